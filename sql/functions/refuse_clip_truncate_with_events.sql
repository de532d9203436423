-- TRUNCATE clips fires no DELETE trigger, so it went past refuse_clip_delete_with_events: the
-- sorting events kept anchors and candidates naming clips that no longer existed. A TRUNCATE
-- of clips while any sorting event exists is refused the same way, with the same override:
--   SET LOCAL heaters_db.allow_clip_delete = 'on'; TRUNCATE clips CASCADE;
-- SECURITY DEFINER: whoever truncates clips need not read the events table.
CREATE OR REPLACE FUNCTION refuse_clip_truncate_with_events()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    events bigint;
BEGIN
    IF coalesce(current_setting('heaters_db.allow_clip_delete', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO events FROM clip_sorting_events;
    IF events > 0 THEN
        RAISE EXCEPTION 'clip truncate refused: sorting events reference clips (% events)', events
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'events are training data; to truncate anyway: SET LOCAL heaters_db.allow_clip_delete = ''on''';
    END IF;
    RETURN NULL;
END;
$$;
