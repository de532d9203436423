-- A daemon stopping cleanly (SIGTERM) hands its unfinished jobs back at once, without spending
-- an attempt, instead of letting their leases run out. Also how a job whose clip changed path
-- while it ran goes back (its 'requeue' mark is cleared: the next run reads the new path).
CREATE OR REPLACE FUNCTION release_jobs(worker text, job_ids integer[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    released integer;
BEGIN
    UPDATE pipeline_jobs
    SET status = 'queued', attempts = greatest(attempts - 1, 0), lease_owner = NULL,
        payload = payload - 'requeue',
        lease_expires_at = NULL, run_after = now(), updated_at = now()
    WHERE id = ANY (job_ids) AND status = 'running' AND lease_owner = worker;
    GET DIAGNOSTICS released = ROW_COUNT;
    IF released > 0 THEN
        PERFORM pg_notify('heaters_db_jobs', json_build_object('kind', 'released', 'count', released)::text);
    END IF;
    RETURN released;
END;
$$;
