-- Enough new sorting events of a mode enqueue a train_head job: functions/enqueue_due_train_jobs.sql.
CREATE OR REPLACE TRIGGER clip_sorting_events_retrain
    AFTER INSERT ON clip_sorting_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION enqueue_due_train_jobs();
