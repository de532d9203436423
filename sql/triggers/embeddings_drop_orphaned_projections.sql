-- Embeddings deleted, or moved off a clip or variant, take their projections with them:
-- functions/drop_orphaned_projections.sql.
CREATE OR REPLACE TRIGGER embeddings_drop_orphaned_projections_on_delete
    AFTER DELETE ON embeddings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION drop_orphaned_projections();
CREATE OR REPLACE TRIGGER embeddings_drop_orphaned_projections_on_update
    AFTER UPDATE ON embeddings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION drop_orphaned_projections();
