-- The name and the definition (what follows CREATE INDEX <name>) of one projection head's HNSW
-- partial expression index, and whether a valid one exists already (hnsw_index_definition).
-- ensure_head_index runs it inside a transaction; heaters-db builds it with CREATE INDEX
-- CONCURRENTLY from the client, outside any transaction, so inserts into projected_embeddings
-- (and so into embeddings, through the projection trigger) never wait for the build
-- (heaters_db/index_build.py).
CREATE OR REPLACE FUNCTION head_index_definition(head_id integer)
RETURNS TABLE (index_name text, definition text, valid boolean, present boolean)
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT d.* FROM projection_head_by_id($1) h, hnsw_index_definition(
        format('projected_embeddings_hnsw_head_%s', h.id), 'projected_embeddings', h.output_dim,
        format('projection_head_id = %s', h.id)) d;
$$;
