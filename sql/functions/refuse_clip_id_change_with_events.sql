-- An UPDATE that changes the id of a clip sorting events name leaves them naming an id no clip
-- has (the events have no foreign key into heaters' own table), as a DELETE would: refused the
-- same way (functions/refuse_clip_delete_with_events.sql), with the same override. Statement
-- transition tables cannot pair an old row with its new one once the key moved, so the test is
-- on the ids: an id the statement's old rows had and its new rows have not.
-- SECURITY DEFINER: whoever updates clips (heaters itself) need not read the events table.
CREATE OR REPLACE FUNCTION refuse_clip_id_change_with_events()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    referenced integer[];
BEGIN
    IF coalesce(current_setting('heaters_db.allow_clip_delete', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(o.id ORDER BY o.id) INTO referenced
    FROM old_clips o
    WHERE NOT EXISTS (SELECT 1 FROM new_clips n WHERE n.id = o.id)
      AND EXISTS (SELECT 1 FROM clip_sorting_events e
                  WHERE e.anchor_clip_id = o.id OR o.id = ANY (e.candidate_clip_ids));
    IF referenced IS NOT NULL THEN
        RAISE EXCEPTION 'clip id change refused: sorting events reference clips %', clip_id_list(referenced)
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'events are training data; to change ids anyway: SET LOCAL heaters_db.allow_clip_delete = ''on''';
    END IF;
    RETURN NULL;
END;
$$;
