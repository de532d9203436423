-- Creates (if missing) the HNSW index that serves one window variant's moment_embeddings: a
-- partial expression index like ensure_variant_index; nearest_moments repeats its expression
-- and predicate. Returns its name.
CREATE OR REPLACE FUNCTION ensure_moment_index(variant_id integer)
RETURNS text
LANGUAGE plpgsql
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
    index_name := format('moment_embeddings_hnsw_variant_%s', v.id);
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON moment_embeddings USING hnsw ((embedding::vector(%s)) vector_cosine_ops) '
        'WHERE variant_id = %s',
        index_name, v.dim, v.id);
    RETURN index_name;
END;
$$;
