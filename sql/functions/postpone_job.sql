-- A job that cannot start now through no fault of its own (another run holds its mode: a
-- `train --now`, or a paused worker whose lease this claim took over) goes back to the queue
-- without spending an attempt, runnable again after delay_seconds; `reason` is kept as its
-- last_error so `heaters-db jobs` says why it waits. Returns the new status ('queued'; NULL when
-- the job was no longer this worker's).
CREATE OR REPLACE FUNCTION postpone_job(job_id integer, worker text, reason text,
                                        delay_seconds double precision)
RETURNS text
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    new_status text;
BEGIN
    UPDATE pipeline_jobs
    SET status = 'queued', attempts = greatest(attempts - 1, 0),
        run_after = now() + make_interval(secs => greatest(delay_seconds, 0)),
        last_error = reason, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE id = job_id AND status = 'running' AND lease_owner = worker
    RETURNING status INTO new_status;
    RETURN new_status;
END;
$$;
