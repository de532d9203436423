-- Heartbeat: a live daemon pushes the leases of the jobs it still holds forward. Returns the ids
-- it still owns (a job missing from the result was taken away, e.g. after a long stall).
CREATE OR REPLACE FUNCTION extend_job_leases(worker text, job_ids integer[], lease_seconds integer)
RETURNS SETOF integer
LANGUAGE sql
SET search_path = public, pg_temp
AS $$
    UPDATE pipeline_jobs
    SET lease_expires_at = now() + make_interval(secs => lease_seconds), updated_at = now()
    WHERE id = ANY (job_ids) AND status = 'running' AND lease_owner = worker
    RETURNING id;
$$;
