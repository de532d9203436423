-- Queues the projection of a head's rows for the daemon instead of doing it now: one pending
-- `reproject` job per head (partial unique index pipeline_jobs_pending_reproject), announced on
-- heaters_db_jobs (delivered at commit). catch_up true: the job projects only the rows that are
-- missing or stale (refresh_head_projections), used by the embeddings trigger when a head could
-- not project an insert (broken weights, out of memory...) or when a session asked for queued
-- projection (SET heaters_db.project_embeddings = 'queued'); catch_up false: the job re-projects
-- every row (the re-projection after the gate). A pending catch-up is widened to a full
-- re-projection when one is asked for. Returns the job id, or NULL when a pending job already
-- covers it.
--   SELECT project_head_later(7, 'passed the held-out gate', false);
CREATE OR REPLACE FUNCTION project_head_later(head_id integer, reason text, catch_up boolean)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    job_id integer;
BEGIN
    INSERT INTO pipeline_jobs AS j (kind, mode, projection_head_id, max_attempts, payload)
    SELECT 'reproject', p.mode, p.id, heaters_setting('job_max_attempts')::integer,
           jsonb_build_object('reason', reason)
               || CASE WHEN catch_up THEN '{"catch_up": true}'::jsonb ELSE '{}'::jsonb END
    FROM projection_heads p WHERE p.id = head_id
    ON CONFLICT (projection_head_id) WHERE kind = 'reproject' AND status IN ('queued', 'running')
    DO UPDATE SET payload = (j.payload - 'catch_up') || jsonb_build_object('reason', reason)
        WHERE NOT catch_up AND j.status = 'queued' AND j.payload ? 'catch_up'
    RETURNING j.id INTO job_id;
    IF job_id IS NOT NULL THEN
        PERFORM pg_notify('heaters_db_jobs', json_build_object(
            'kind', 'reproject', 'head_id', head_id, 'job_id', job_id)::text);
    END IF;
    RETURN job_id;
END;
$$;
REVOKE ALL ON FUNCTION project_head_later(integer, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION project_head_later(integer, text, boolean) TO heaters_worker;
