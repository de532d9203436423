-- Trigger body: clips that got a video (inserted with clip_filepath, or clip_filepath changed)
-- get one embed job per enabled variant. Statement-level with transition tables, so a bulk
-- insert of 10k clips makes one INSERT ... SELECT and one NOTIFY, not 10k.
CREATE OR REPLACE FUNCTION enqueue_clip_embed_jobs()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    changed integer[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(n.id) INTO changed FROM new_clips n WHERE n.clip_filepath IS NOT NULL;
    ELSE
        SELECT array_agg(n.id) INTO changed
        FROM new_clips n JOIN old_clips o ON o.id = n.id
        WHERE n.clip_filepath IS NOT NULL AND n.clip_filepath IS DISTINCT FROM o.clip_filepath;
    END IF;
    IF changed IS NOT NULL THEN
        PERFORM enqueue_embed_jobs(changed);
    END IF;
    RETURN NULL;
END;
$$;
