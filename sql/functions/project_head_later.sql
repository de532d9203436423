-- Queues the projection of a head's rows for the daemon instead of doing it now, announced on
-- heaters_db_jobs (delivered at commit).
-- catch_up true: a `reproject` job with payload {"catch_up": true} that projects only the rows
-- that are missing or stale (refresh_head_projections); queued by the embeddings trigger when a
-- head could not project a statement's rows (broken weights, out of memory...) or left them to
-- the daemon (a bulk statement, or SET heaters_db.project_embeddings = 'queued'). One QUEUED
-- catch-up per head (index pipeline_jobs_queued_catch_up, revision 0016): one already running
-- may have read the embeddings before these rows committed, so another queues behind it.
-- catch_up false: a full re-projection (after the gate), one per head queued or running.
-- Returns the job id, or NULL when a pending job already covers it.
--   SELECT project_head_later(7, 'passed the held-out gate', false);
CREATE OR REPLACE FUNCTION project_head_later(head_id integer, reason text, catch_up boolean)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    WITH head AS (
        SELECT p.mode, p.id, heaters_setting('job_max_attempts')::integer AS max_attempts,
               jsonb_build_object('reason', reason) AS payload
        FROM projection_heads p WHERE p.id = head_id
    ), queued_catch_up AS (
        INSERT INTO pipeline_jobs (kind, mode, projection_head_id, max_attempts, payload)
        SELECT 'reproject', h.mode, h.id, h.max_attempts, h.payload || '{"catch_up": true}'
        FROM head h WHERE catch_up
        ON CONFLICT (projection_head_id)
            WHERE kind = 'reproject' AND status = 'queued' AND payload ? 'catch_up'
        DO NOTHING
        RETURNING id
    ), queued_full AS (
        INSERT INTO pipeline_jobs (kind, mode, projection_head_id, max_attempts, payload)
        SELECT 'reproject', h.mode, h.id, h.max_attempts, h.payload
        FROM head h WHERE NOT catch_up
        ON CONFLICT (projection_head_id)
            WHERE kind = 'reproject' AND status IN ('queued', 'running')
              AND NOT (payload ? 'catch_up')
        DO NOTHING
        RETURNING id
    ), added AS (
        SELECT id FROM queued_catch_up UNION ALL SELECT id FROM queued_full
    )
    SELECT a.id FROM added a
    CROSS JOIN LATERAL (
        SELECT pg_notify('heaters_db_jobs', json_build_object(
            'kind', 'reproject', 'head_id', head_id, 'job_id', a.id)::text)
    ) notified;
$$;
REVOKE ALL ON FUNCTION project_head_later(integer, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION project_head_later(integer, text, boolean) TO heaters_worker;
