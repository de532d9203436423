-- Trigger body: clips that got a video (inserted with clip_filepath, or clip_filepath changed)
-- get one embed job per enabled variant. Statement-level with transition tables, so a bulk
-- insert of 10k clips makes one INSERT ... SELECT and one NOTIFY, not 10k.
CREATE OR REPLACE FUNCTION enqueue_clip_embed_jobs()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    changed integer[];
    moved integer[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(n.id) INTO changed FROM new_clips n WHERE n.clip_filepath IS NOT NULL;
    ELSE
        SELECT array_agg(n.id) INTO changed
        FROM new_clips n JOIN old_clips o ON o.id = n.id
        WHERE n.clip_filepath IS NOT NULL AND n.clip_filepath IS DISTINCT FROM o.clip_filepath;
        -- An embed job running now read the old path: mark it, so its result is not written
        -- and the job runs again on the new file (functions/lock_job_lease.sql). This waits
        -- for a worker that is writing the job's result right now; once that commits, the
        -- job is done and enqueue_embed_jobs below makes a new one.
        SELECT array_agg(n.id) INTO moved
        FROM new_clips n JOIN old_clips o ON o.id = n.id
        WHERE n.clip_filepath IS DISTINCT FROM o.clip_filepath;
        IF moved IS NOT NULL THEN
            UPDATE pipeline_jobs j
            SET payload = j.payload || '{"requeue": true}'::jsonb, updated_at = now()
            WHERE j.kind = 'embed' AND j.status = 'running' AND j.clip_id = ANY (moved);
        END IF;
    END IF;
    IF changed IS NOT NULL THEN
        PERFORM enqueue_embed_jobs(changed);
    END IF;
    RETURN NULL;
END;
$$;
