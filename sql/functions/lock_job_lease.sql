-- Fencing: called first inside the transaction that writes a job's result. Locks the job row
-- and returns its payload while the lease is still this worker's claim (same owner, same claim
-- time, not expired); NULL when the lease was lost (expired, requeued, taken by another worker).
-- The row lock holds until that transaction ends, so no requeue or other claim can slip in
-- between this check and the commit: a worker that lost its lease rolls its write back.
-- The payload carries 'requeue' when the clip's clip_filepath changed while the job ran
-- (functions/enqueue_clip_embed_jobs.sql): the result is stale and the job is released instead.
CREATE OR REPLACE FUNCTION lock_job_lease(job_id integer, worker text, claimed_at timestamptz)
RETURNS jsonb
LANGUAGE sql
SET search_path = public, pg_temp
AS $$
    SELECT j.payload FROM pipeline_jobs j
    WHERE j.id = job_id AND j.status = 'running' AND j.lease_owner = worker
      AND j.started_at = claimed_at AND j.lease_expires_at > clock_timestamp()
    FOR UPDATE;
$$;
