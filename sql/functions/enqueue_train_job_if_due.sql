-- Enqueue a train_head job for a mode when heaters_setting('retrain_every') events of that mode
-- have arrived since the last training. "Since the last training" is the newest event any head of
-- the mode was trained through (active, candidate, retired or rejected alike: a rejected
-- training must not re-trigger on every following event), or that a finished train_head job
-- without a head (skipped, dead) had seen. Returns the new job's id, or NULL (not due, or a
-- training is already pending).
CREATE OR REPLACE FUNCTION enqueue_train_job_if_due(mode text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    stored_mode text := sorting_mode(mode);
    watermark integer;
    new_events integer;
    job record;
BEGIN
    IF EXISTS (SELECT 1 FROM pipeline_jobs j
               WHERE j.kind = 'train_head' AND j.mode = stored_mode AND j.status IN ('queued', 'running')) THEN
        RETURN NULL;
    END IF;
    SELECT greatest(
        (SELECT max(h.trained_through_event_id) FROM projection_heads h WHERE h.mode = stored_mode),
        (SELECT max(coalesce(jsonb_event_id(j.result -> 'trained_through_event_id'),
                             jsonb_event_id(j.payload -> 'events_through')))
         FROM pipeline_jobs j
         WHERE j.kind = 'train_head' AND j.mode = stored_mode AND j.status IN ('done', 'skipped', 'dead')),
        0)
    INTO watermark;
    SELECT count(*) INTO new_events
    FROM clip_sorting_events e WHERE e.sorting_mode = stored_mode AND e.id > watermark;
    IF new_events < heaters_setting('retrain_every')::integer THEN
        RETURN NULL;
    END IF;
    SELECT * INTO job FROM enqueue_train_job(stored_mode, format('%s new sorting events', new_events));
    RETURN CASE WHEN job.enqueued THEN job.job_id END;
END;
$$;
