-- The name and the definition (what follows CREATE INDEX <name>) of one projection head's HNSW
-- partial expression index, and whether a valid one exists already. ensure_head_index runs it
-- inside a transaction; heaters-db builds it with CREATE INDEX CONCURRENTLY from the client,
-- outside any transaction, so inserts into projected_embeddings (and so into embeddings, through
-- the projection trigger) never wait for the build (heaters_db/index_build.py).
CREATE OR REPLACE FUNCTION head_index_definition(head_id integer)
RETURNS TABLE (index_name text, definition text, valid boolean, present boolean)
LANGUAGE plpgsql STABLE
SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads;
BEGIN
    SELECT * INTO h FROM projection_heads p WHERE p.id = head_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown projection head %', head_id USING ERRCODE = 'no_data_found';
    END IF;
    index_name := format('projected_embeddings_hnsw_head_%s', h.id);
    definition := format(
        'ON projected_embeddings USING hnsw ((embedding::vector(%s)) vector_cosine_ops) '
        'WHERE projection_head_id = %s', h.output_dim, h.id);
    SELECT i.indisvalid, true INTO valid, present
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relname = index_name AND c.relnamespace = 'public'::regnamespace;
    valid := coalesce(valid, false);
    present := coalesce(present, false);
    RETURN NEXT;
END;
$$;
