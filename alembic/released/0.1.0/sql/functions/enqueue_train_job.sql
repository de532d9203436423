-- Enqueue a train_head job for a mode ('trick', 'spot', or the stored names) unless one is already
-- pending (queued or running: the partial unique index pipeline_jobs_pending_train), and NOTIFY
-- heaters_db_jobs when one was added. Returns the new job's id with enqueued = true, or the
-- pending job's id with enqueued = false.
-- The payload records events_through, the newest event of the mode at enqueue time: the retrain
-- trigger counts new events from there once the job has ended without a head (skipped, dead).
--   SELECT * FROM enqueue_train_job('trick', 'requested by hand');
CREATE OR REPLACE FUNCTION enqueue_train_job(mode text, reason text DEFAULT 'requested', base_variant_id integer DEFAULT NULL)
RETURNS TABLE (job_id integer, enqueued boolean)
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    stored_mode text := sorting_mode(mode);
    events_through integer;
    new_id integer;
BEGIN
    SELECT coalesce(max(e.id), 0) INTO events_through
    FROM clip_sorting_events e WHERE e.sorting_mode = stored_mode;
    INSERT INTO pipeline_jobs (kind, mode, variant_id, max_attempts, payload)
    VALUES ('train_head', stored_mode, base_variant_id, heaters_setting('job_max_attempts')::integer,
            jsonb_build_object('reason', reason, 'events_through', events_through))
    ON CONFLICT (mode) WHERE kind = 'train_head' AND status IN ('queued', 'running')
    DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NOT NULL THEN
        PERFORM pg_notify('heaters_db_jobs',
            json_build_object('kind', 'train_head', 'mode', stored_mode, 'job_id', new_id)::text);
        RETURN QUERY SELECT new_id, true;
    ELSE
        RETURN QUERY
        SELECT j.id, false FROM pipeline_jobs j
        WHERE j.kind = 'train_head' AND j.mode = stored_mode AND j.status IN ('queued', 'running');
    END IF;
END;
$$;
