-- Projects every window vector of the window variants of a head's base model through the head
-- (apply_head) into projected_moment_embeddings, replacing the head's earlier rows, then builds
-- the head's moment index. Called by the re-projection (heaters_db/heads/reproject.py, before
-- activation); windows written later are projected by the moment_embeddings trigger while the
-- head is a candidate or active. Returns the number of rows written.
--   SELECT project_moment_embeddings(7);
CREATE OR REPLACE FUNCTION project_moment_embeddings(head_id integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads;
    written integer;
BEGIN
    SELECT * INTO h FROM projection_heads p WHERE p.id = head_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown projection head %', coalesce(head_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM projected_moment_embeddings p WHERE p.projection_head_id = h.id;
    INSERT INTO projected_moment_embeddings (moment_embedding_id, projection_head_id, clip_id, embedding)
    SELECT m.id, h.id, m.clip_id, apply_head(h.id, m.embedding)
    FROM moment_embeddings m
    JOIN embedding_variants w ON w.id = m.variant_id AND w.generation_strategy = 'video_moment_windows'
    JOIN embedding_variants b ON b.id = h.base_variant_id AND b.model_name = w.model_name
    WHERE vector_dims(m.embedding) = h.input_dim
    ORDER BY m.id;
    GET DIAGNOSTICS written = ROW_COUNT;
    PERFORM ensure_moment_head_index(h.id);
    RETURN written;
END;
$$;
