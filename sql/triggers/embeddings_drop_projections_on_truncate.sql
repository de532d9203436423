-- TRUNCATE embeddings takes every projection with it: functions/drop_projections_on_truncate.sql.
CREATE OR REPLACE TRIGGER embeddings_drop_projections_on_truncate
    AFTER TRUNCATE ON embeddings
    FOR EACH STATEMENT EXECUTE FUNCTION drop_projections_on_truncate();
