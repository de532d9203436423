-- Creates (if missing) the HNSW index that serves one window variant's moment_embeddings: the
-- partial expression index of hnsw_index_definition, on the variant's rows; nearest_moments
-- repeats its expression and predicate. Returns its name.
CREATE OR REPLACE FUNCTION ensure_moment_index(variant_id integer) RETURNS text
-- SECURITY DEFINER: building an index needs the table's owner; the worker role only calls this.
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT create_index_from_definition(d.index_name, d.definition)
    FROM embedding_variant_with_dim($1) v, hnsw_index_definition(
        format('moment_embeddings_hnsw_variant_%s', v.id), 'moment_embeddings', v.dim,
        format('variant_id = %s', v.id)) d;
$$;
