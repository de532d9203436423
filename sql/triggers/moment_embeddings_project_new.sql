-- New window vectors get their projections under the live heads in the same transaction.
CREATE OR REPLACE TRIGGER moment_embeddings_project_new_on_insert
AFTER INSERT ON moment_embeddings
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION project_new_moment_embeddings();
