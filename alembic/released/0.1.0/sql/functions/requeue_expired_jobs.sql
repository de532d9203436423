-- Jobs whose lease ran out (their daemon died or hung) go back to the queue, or to the dead
-- letter when they have used all their attempts. Returns how many were requeued.
CREATE OR REPLACE FUNCTION requeue_expired_jobs()
RETURNS integer
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    requeued integer;
BEGIN
    UPDATE pipeline_jobs j
    SET status = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'queued' END,
        last_error = format('lease of %s expired at %s', j.lease_owner, j.lease_expires_at),
        lease_owner = NULL,
        lease_expires_at = NULL,
        finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
        updated_at = now()
    WHERE j.id IN (
        SELECT x.id FROM pipeline_jobs x
        WHERE x.status = 'running' AND x.lease_expires_at < now()
        FOR UPDATE SKIP LOCKED
    );
    GET DIAGNOSTICS requeued = ROW_COUNT;
    RETURN requeued;
END;
$$;
