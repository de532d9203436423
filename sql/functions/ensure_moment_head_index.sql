-- Creates (if missing) the HNSW index over one projection head's projected window vectors
-- (projected_moment_embeddings), like ensure_head_index. Returns its name.
CREATE OR REPLACE FUNCTION ensure_moment_head_index(head_id integer)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads;
    index_name text;
BEGIN
    SELECT * INTO h FROM projection_heads WHERE id = head_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown projection head %', head_id USING ERRCODE = 'no_data_found';
    END IF;
    index_name := format('projected_moment_embeddings_hnsw_head_%s', h.id);
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON projected_moment_embeddings USING hnsw ((embedding::vector(%s)) vector_cosine_ops) '
        'WHERE projection_head_id = %s',
        index_name, h.output_dim, h.id);
    RETURN index_name;
END;
$$;
