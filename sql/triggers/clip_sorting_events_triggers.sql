-- Validation before insert, append-only refusal, and one NOTIFY per statement.
CREATE OR REPLACE TRIGGER clip_sorting_events_validate
    BEFORE INSERT ON clip_sorting_events
    FOR EACH ROW EXECUTE FUNCTION validate_sorting_event();
CREATE OR REPLACE TRIGGER clip_sorting_events_append_only
    BEFORE UPDATE OR DELETE ON clip_sorting_events
    FOR EACH ROW EXECUTE FUNCTION refuse_sorting_event_change();
CREATE OR REPLACE TRIGGER clip_sorting_events_append_only_truncate
    BEFORE TRUNCATE ON clip_sorting_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_sorting_event_change();
CREATE OR REPLACE TRIGGER clip_sorting_events_notify
    AFTER INSERT ON clip_sorting_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_sorting_events();
CREATE OR REPLACE TRIGGER clip_sorting_events_assign_split
    AFTER INSERT ON clip_sorting_events
    FOR EACH ROW EXECUTE FUNCTION assign_anchor_split();
