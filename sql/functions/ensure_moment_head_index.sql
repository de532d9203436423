-- Creates (if missing) the HNSW index over one projection head's projected window vectors
-- (projected_moment_embeddings), like ensure_head_index. Returns its name.
CREATE OR REPLACE FUNCTION ensure_moment_head_index(head_id integer) RETURNS text
-- SECURITY DEFINER: building an index needs the table's owner; the worker role only calls this.
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT create_index_from_definition(d.index_name, d.definition)
    FROM projection_head_by_id($1) h, hnsw_index_definition(
        format('projected_moment_embeddings_hnsw_head_%s', h.id), 'projected_moment_embeddings',
        h.output_dim, format('projection_head_id = %s', h.id)) d;
$$;
