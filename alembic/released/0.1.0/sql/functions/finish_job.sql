-- A job ended: done (with its result) or skipped (nothing to do, e.g. no trick metadata; never
-- retried). Only the lease holder may finish it; returns false if the job was not its own any more.
CREATE OR REPLACE FUNCTION finish_job(job_id integer, worker text, final_status text, job_result jsonb DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    IF final_status NOT IN ('done', 'skipped') THEN
        RAISE EXCEPTION 'finish_job: status must be done or skipped, not %', final_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE pipeline_jobs
    SET status = final_status, result = job_result, lease_owner = NULL, lease_expires_at = NULL,
        last_error = CASE WHEN final_status = 'skipped' THEN job_result ->> 'reason' ELSE last_error END,
        finished_at = now(), updated_at = now()
    WHERE id = job_id AND status = 'running' AND lease_owner = worker;
    RETURN FOUND;
END;
$$;
