-- New or changed embeddings get their projection under every active head at once:
-- functions/project_new_embeddings.sql. (A trigger with transition tables may name only one
-- event, hence two triggers.)
CREATE OR REPLACE TRIGGER embeddings_project_new_on_insert
    AFTER INSERT ON embeddings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION project_new_embeddings();
CREATE OR REPLACE TRIGGER embeddings_project_new_on_update
    AFTER UPDATE ON embeddings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION project_new_embeddings();
