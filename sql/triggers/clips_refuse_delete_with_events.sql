-- One check per DELETE statement over all its rows (functions/refuse_clip_delete_with_events.sql).
CREATE OR REPLACE TRIGGER clips_refuse_delete_with_events
AFTER DELETE ON clips
REFERENCING OLD TABLE AS deleted_clips
FOR EACH STATEMENT EXECUTE FUNCTION refuse_clip_delete_with_events();
-- TRUNCATE fires no DELETE trigger: its own check (functions/refuse_clip_truncate_with_events.sql).
CREATE OR REPLACE TRIGGER clips_refuse_truncate_with_events
BEFORE TRUNCATE ON clips
FOR EACH STATEMENT EXECUTE FUNCTION refuse_clip_truncate_with_events();
-- Nor may an UPDATE move a named clip to another id (functions/refuse_clip_id_change_with_events.sql).
CREATE OR REPLACE TRIGGER clips_refuse_id_change_with_events
AFTER UPDATE ON clips
REFERENCING OLD TABLE AS old_clips NEW TABLE AS new_clips
FOR EACH STATEMENT EXECUTE FUNCTION refuse_clip_id_change_with_events();
