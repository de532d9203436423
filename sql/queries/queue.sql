-- Runtime queries of heaters_db/queue.py and the `heaters-db jobs` command.
-- The queue's rules live in the SQL functions (sql/functions/claim_jobs.sql, fail_job.sql, ...);
-- these blocks only call them, so a reader sees in one place what Python sends.

-- name: listen
LISTEN heaters_db_jobs;

-- name: schema_ready
-- The queue exists (the database was migrated): checked once per connection by the daemon.
SELECT to_regprocedure('claim_jobs(text, text[], integer, integer)') IS NOT NULL AS ready;

-- name: claim_jobs
-- Up to max_jobs runnable jobs of the given kinds, leased to this worker (FOR UPDATE SKIP LOCKED
-- inside claim_jobs, so concurrent workers never get the same job). Expired leases are
-- requeued first.
SELECT * FROM claim_jobs(%(worker)s, %(kinds)s::text[], %(max_jobs)s, %(lease_seconds)s)
ORDER BY id;

-- name: extend_job_leases
-- Heartbeat; returns the ids this worker still owns.
SELECT extend_job_leases AS id
FROM extend_job_leases(%(worker)s, %(job_ids)s::integer[], %(lease_seconds)s);

-- name: finish_job
SELECT finish_job(%(job_id)s, %(worker)s, %(status)s, %(result)s::jsonb) AS finished;

-- name: lock_job_lease
-- Fencing: first statement of the transaction that writes a job's result (NULL payload: lost).
SELECT lock_job_lease(%(job_id)s, %(worker)s, %(claimed_at)s) AS payload;

-- name: dead_letter_job
SELECT dead_letter_job(%(job_id)s, %(worker)s, %(error)s, %(traceback)s) AS status;

-- name: fail_job
-- Retry later with exponential backoff, or dead-letter after max_attempts; returns the new status
-- (NULL when the job was not this worker's any more).
SELECT fail_job(%(job_id)s, %(worker)s, %(error)s, %(traceback)s, %(base_delay_seconds)s)
    AS status;

-- name: postpone_job
-- Back to the queue without spending an attempt, runnable after delay_seconds.
SELECT postpone_job(%(job_id)s, %(worker)s, %(reason)s, %(delay_seconds)s) AS status;

-- name: release_jobs
SELECT release_jobs(%(worker)s, %(job_ids)s::integer[]) AS released;

-- name: requeue_expired_jobs
SELECT requeue_expired_jobs() AS requeued;

-- name: seconds_until_next_job
-- How long until the earliest queued job of these kinds becomes runnable (NULL: none queued,
-- <= 0: one is runnable now). The daemon sleeps no longer than this, so a retry scheduled by
-- fail_job's backoff runs on time without a NOTIFY.
SELECT extract(epoch FROM min(run_after) - now())::double precision AS seconds
FROM pipeline_jobs
WHERE status = 'queued' AND kind = ANY (%(kinds)s::text[]);

-- name: seconds_until_next_lease_expiry
-- When the earliest running lease of these kinds runs out (a dead worker's job becomes
-- claimable then).
SELECT extract(epoch FROM min(lease_expires_at) - now())::double precision AS seconds
FROM pipeline_jobs
WHERE status = 'running' AND kind = ANY (%(kinds)s::text[]);

-- name: skip_queued_variant_jobs
-- `heaters-db variant disable`: queued embed jobs of the variant end as skipped (never retried).
UPDATE pipeline_jobs
SET status = 'skipped', last_error = %(reason)s,
    result = jsonb_build_object('reason', %(reason)s::text),
    finished_at = now(), updated_at = now()
WHERE kind = 'embed' AND variant_id = %(variant_id)s AND status = 'queued';

-- name: queue_status
SELECT kind, status, jobs, oldest_inserted_at, next_run_after, expired_leases, workers
FROM pipeline_queue_status
ORDER BY kind, array_position(ARRAY['running', 'queued', 'dead', 'skipped', 'done'], status);

-- name: running_leases
SELECT j.id AS job_id, j.kind, j.clip_id, v.model_name, v.generation_strategy, j.mode,
       j.projection_head_id, j.attempts, j.max_attempts, j.lease_owner, j.started_at,
       j.lease_expires_at, j.lease_expires_at < now() AS expired
FROM pipeline_jobs j
LEFT JOIN embedding_variants v ON v.id = j.variant_id
WHERE j.status = 'running'
ORDER BY j.lease_expires_at, j.id
LIMIT %(limit)s;

-- name: recent_errors
-- Failed attempts waiting for a retry, and dead jobs (skipped jobs carry a reason, not an error).
SELECT job_id, kind, status, clip_id, clip_filepath, model_name, generation_strategy, mode,
       attempts, max_attempts, run_after, last_error, last_traceback, updated_at
FROM pipeline_job_errors
WHERE status <> 'skipped' AND (%(status)s::text IS NULL OR status = %(status)s::text)
LIMIT %(limit)s;

-- name: requeue_job
-- `heaters-db requeue`: a dead (or skipped) job runs again from its first attempt; its last
-- error stays until the next attempt replaces it. No row: no such job in those states. Raises
-- unique_violation when a queued or running job already does the same work (the
-- pipeline_jobs_pending_* indexes allow one per clip and variant, mode or head).
WITH requeued AS (
    UPDATE pipeline_jobs
    SET status = 'queued', attempts = 0, run_after = now(), lease_owner = NULL,
        lease_expires_at = NULL, updated_at = now()
    WHERE id = %(job_id)s AND status IN ('dead', 'skipped')
    RETURNING id, kind
)
SELECT r.id, r.kind,
       pg_notify('heaters_db_jobs', json_build_object('kind', 'requeue', 'job_id', r.id)::text)
FROM requeued r;

-- name: job_state
SELECT id, kind, status FROM pipeline_jobs WHERE id = %(job_id)s;
