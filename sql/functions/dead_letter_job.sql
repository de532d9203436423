-- A permanent input error (an empty or non-video file, a missing file, no default variant...):
-- retrying cannot help, so the job is dead at once with the reason kept, whatever attempts are
-- left. Only the lease holder may do it; returns 'dead', or NULL when the job was not its own.
CREATE OR REPLACE FUNCTION dead_letter_job(job_id integer, worker text, error text, traceback text DEFAULT NULL)
RETURNS text
LANGUAGE sql
SET search_path = public, pg_temp
AS $$
    UPDATE pipeline_jobs
    SET status = 'dead', last_error = error, last_traceback = traceback,
        lease_owner = NULL, lease_expires_at = NULL, finished_at = now(), updated_at = now()
    WHERE id = job_id AND status = 'running' AND lease_owner = worker
    RETURNING status;
$$;
