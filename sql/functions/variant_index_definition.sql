-- The name and the definition (what follows CREATE INDEX <name>) of one embedding variant's
-- HNSW partial expression index, and whether a valid one exists already. ensure_variant_index
-- runs it inside a transaction; the daemon builds it with CREATE INDEX CONCURRENTLY from the
-- client, outside any transaction, so heaters' own inserts into embeddings never wait for the
-- build (heaters_db/index_build.py).
CREATE OR REPLACE FUNCTION variant_index_definition(variant_id integer)
RETURNS TABLE (index_name text, definition text, valid boolean, present boolean)
LANGUAGE plpgsql STABLE
SET search_path = public, pg_temp
AS $$
DECLARE
    v embedding_variants;
BEGIN
    SELECT * INTO v FROM embedding_variants ev WHERE ev.id = variant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown embedding variant %', variant_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v.dim IS NULL THEN
        RAISE EXCEPTION 'embedding variant % (% / %) has no dimension yet: embed a clip first',
            v.id, v.model_name, v.generation_strategy USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    index_name := format('embeddings_hnsw_variant_%s', v.id);
    definition := format(
        'ON embeddings USING hnsw ((embedding::vector(%s)) vector_cosine_ops) '
        'WHERE model_name = %L AND generation_strategy = %L',
        v.dim, v.model_name, v.generation_strategy);
    SELECT i.indisvalid, true INTO valid, present
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relname = index_name AND c.relnamespace = 'public'::regnamespace;
    valid := coalesce(valid, false);
    present := coalesce(present, false);
    RETURN NEXT;
END;
$$;
