-- Sorting events are the training data: deleting a clip they name would leave anchors and
-- candidates pointing at nothing and silently change what later heads learn from. So a
-- DELETE of such clips is refused, naming a few of them. Deliberately deleting anyway (the
-- events then keep the bare ids, as before this check existed):
--   SET LOCAL heaters_db.allow_clip_delete = 'on'; DELETE FROM clips WHERE ...;
-- SECURITY DEFINER: whoever deletes clips (heaters itself) need not read the events table.
CREATE OR REPLACE FUNCTION refuse_clip_delete_with_events()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    referenced integer[];
BEGIN
    IF coalesce(current_setting('heaters_db.allow_clip_delete', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(d.id ORDER BY d.id) INTO referenced
    FROM deleted_clips d
    WHERE EXISTS (
        SELECT 1 FROM clip_sorting_events e
        WHERE e.anchor_clip_id = d.id OR d.id = ANY (e.candidate_clip_ids));
    IF referenced IS NOT NULL THEN
        RAISE EXCEPTION 'clip delete refused: sorting events reference clips %', clip_id_list(referenced)
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'events are training data; to delete anyway: SET LOCAL heaters_db.allow_clip_delete = ''on''';
    END IF;
    RETURN NULL;
END;
$$;
