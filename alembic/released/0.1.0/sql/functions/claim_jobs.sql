-- Claim up to max_jobs runnable jobs of the given kinds for one worker, leased for lease_seconds.
-- FOR UPDATE SKIP LOCKED lets any number of daemons on any number of hosts claim concurrently
-- without ever handing the same job to two of them. Expired leases are requeued first, so a job
-- whose daemon was killed is picked up here.
CREATE OR REPLACE FUNCTION claim_jobs(worker text, kinds text[], max_jobs integer, lease_seconds integer)
RETURNS SETOF pipeline_jobs
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM requeue_expired_jobs();
    RETURN QUERY
    WITH picked AS (
        SELECT j.id FROM pipeline_jobs j
        WHERE j.status = 'queued' AND j.run_after <= now() AND j.kind = ANY (kinds)
        ORDER BY j.run_after, j.id
        LIMIT max_jobs
        FOR UPDATE SKIP LOCKED
    )
    UPDATE pipeline_jobs j
    SET status = 'running',
        attempts = j.attempts + 1,
        lease_owner = worker,
        lease_expires_at = now() + make_interval(secs => lease_seconds),
        started_at = now(),
        updated_at = now()
    FROM picked
    WHERE j.id = picked.id
    RETURNING j.*;
END;
$$;
