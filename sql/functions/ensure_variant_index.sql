-- Creates (if missing) the HNSW index that serves one embedding variant. `embeddings.embedding`
-- has no fixed dimension, so the index is on the expression embedding::vector(dim), restricted to
-- the variant's rows; queries must repeat both (functions/nearest_in_variant.sql). Returns its name.
CREATE OR REPLACE FUNCTION ensure_variant_index(variant_id integer)
RETURNS text
LANGUAGE plpgsql
-- SECURITY DEFINER: building an index needs the table's owner; the worker role only calls this.
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v embedding_variants;
    index_name text;
BEGIN
    SELECT * INTO v FROM embedding_variants WHERE id = variant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown embedding variant %', variant_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v.dim IS NULL THEN
        RAISE EXCEPTION 'embedding variant % (% / %) has no dimension yet: embed a clip first',
            v.id, v.model_name, v.generation_strategy USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    index_name := format('embeddings_hnsw_variant_%s', v.id);
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON embeddings USING hnsw ((embedding::vector(%s)) vector_cosine_ops) '
        'WHERE model_name = %L AND generation_strategy = %L',
        index_name, v.dim, v.model_name, v.generation_strategy);
    RETURN index_name;
END;
$$;
