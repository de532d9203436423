-- A job attempt failed: retry later with exponential backoff (base_delay * 2^(attempts-1),
-- capped at an hour), or dead-letter it after max_attempts, keeping the error and traceback.
-- Returns the job's new status.
CREATE OR REPLACE FUNCTION fail_job(job_id integer, worker text, error text, traceback text DEFAULT NULL,
                                    base_delay_seconds double precision DEFAULT 5)
RETURNS text
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    new_status text;
BEGIN
    UPDATE pipeline_jobs
    SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
        run_after = now() + make_interval(secs => least(3600, base_delay_seconds * 2 ^ greatest(attempts - 1, 0))),
        last_error = error,
        last_traceback = traceback,
        lease_owner = NULL,
        lease_expires_at = NULL,
        finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
        updated_at = now()
    WHERE id = job_id AND status = 'running' AND lease_owner = worker
    RETURNING status INTO new_status;
    IF new_status = 'queued' THEN
        PERFORM pg_notify('heaters_db_jobs', json_build_object('kind', 'retry', 'job_id', job_id)::text);
    END IF;
    RETURN new_status;
END;
$$;
