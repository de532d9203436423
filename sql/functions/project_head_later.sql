-- Queues the projection of a head's rows for the daemon instead of doing it now, announced on
-- heaters_db_jobs (delivered at commit).
-- catch_up true: a `reproject` job with payload {"catch_up": true} that projects only the rows
-- that are missing or stale (refresh_head_projections); queued by the embeddings trigger when a
-- head could not project a statement's rows (broken weights, out of memory...) or left them to
-- the daemon (a bulk statement, or SET heaters_db.project_embeddings = 'queued'). One QUEUED
-- catch-up per head (index pipeline_jobs_queued_catch_up, revision 0016): one already running
-- may have read the embeddings before these rows committed, so another queues behind it.
-- A caller that finds a queued catch-up joins it: it locks the job row (FOR KEY SHARE) until its
-- own transaction ends, so claim_jobs (FOR UPDATE SKIP LOCKED) cannot start that job while the
-- caller's rows are still uncommitted, which would read the embeddings without them and leave
-- them "not projected yet" with no job left to do it. Were the queued job claimed between the
-- two statements, the loop queues a new one. Joining notifies too: a daemon that skipped the
-- locked job hears of it again at the caller's commit.
-- catch_up false: a full re-projection (after the gate), one per head queued or running.
-- Returns the job id, or NULL when a pending job already covers it.
--   SELECT project_head_later(7, 'passed the held-out gate', false);
CREATE OR REPLACE FUNCTION project_head_later(head_id integer, reason text, catch_up boolean)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    head record;
    queued_id integer;
    joined_id integer;
BEGIN
    SELECT p.mode, p.id, heaters_setting('job_max_attempts')::integer AS max_attempts,
           jsonb_build_object('reason', project_head_later.reason) AS payload
    INTO head
    FROM projection_heads p WHERE p.id = project_head_later.head_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT project_head_later.catch_up THEN
        INSERT INTO pipeline_jobs (kind, mode, projection_head_id, max_attempts, payload)
        VALUES ('reproject', head.mode, head.id, head.max_attempts, head.payload)
        ON CONFLICT (projection_head_id)
            WHERE kind = 'reproject' AND status IN ('queued', 'running')
              AND NOT (payload ? 'catch_up')
        DO NOTHING
        RETURNING id INTO queued_id;
    ELSE
        LOOP
            INSERT INTO pipeline_jobs (kind, mode, projection_head_id, max_attempts, payload)
            VALUES ('reproject', head.mode, head.id, head.max_attempts,
                    head.payload || '{"catch_up": true}')
            ON CONFLICT (projection_head_id)
                WHERE kind = 'reproject' AND status = 'queued' AND payload ? 'catch_up'
            DO NOTHING
            RETURNING id INTO queued_id;
            EXIT WHEN queued_id IS NOT NULL;
            SELECT j.id INTO joined_id FROM pipeline_jobs j
            WHERE j.projection_head_id = head.id AND j.kind = 'reproject'
              AND j.status = 'queued' AND j.payload ? 'catch_up'
            FOR KEY SHARE;
            EXIT WHEN joined_id IS NOT NULL;
            -- The queued job was claimed (or removed) since the INSERT: queue another.
        END LOOP;
    END IF;
    PERFORM pg_notify('heaters_db_jobs', json_build_object(
        'kind', 'reproject', 'head_id', head.id,
        'job_id', coalesce(queued_id, joined_id))::text)
    WHERE coalesce(queued_id, joined_id) IS NOT NULL;
    RETURN queued_id;
END;
$$;
REVOKE ALL ON FUNCTION project_head_later(integer, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION project_head_later(integer, text, boolean) TO heaters_worker;
