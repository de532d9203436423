-- The name and the definition (what follows CREATE INDEX <name>) of one embedding variant's
-- HNSW partial expression index, and whether a valid one exists already (hnsw_index_definition).
-- ensure_variant_index runs it inside a transaction; the daemon builds it with CREATE INDEX
-- CONCURRENTLY from the client, outside any transaction, so heaters' own inserts into embeddings
-- never wait for the build (heaters_db/index_build.py).
CREATE OR REPLACE FUNCTION variant_index_definition(variant_id integer)
RETURNS TABLE (index_name text, definition text, valid boolean, present boolean)
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$ SELECT d.* FROM embedding_variant_with_dim($1) v, hnsw_index_definition(
    format('embeddings_hnsw_variant_%s', v.id), 'embeddings', v.dim,
    format('model_name = %L AND generation_strategy = %L', v.model_name, v.generation_strategy)) d $$;
