-- Catches up a head's window projections (projected_moment_embeddings) the way
-- refresh_head_projections catches up its clip rows: every window vector of its base model that
-- has no projection under the head (written while the head was retired: the moment trigger
-- projects under active and candidate heads only), or whose projection is older than the window
-- (moment_embeddings.updated_at after the projection's inserted_at), is projected again. In
-- chunks of 2000 windows, one apply_head_batch call each (no per-row PL/Python). activate_head
-- calls it, so rollback_head to a retired head serves fresh windows. Returns the rows written.
--   SELECT project_stale_moment_embeddings(7);
CREATE OR REPLACE FUNCTION project_stale_moment_embeddings(head_id integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads;
    chunk record;
    written integer := 0;
BEGIN
    SELECT * INTO h FROM projection_heads p WHERE p.id = head_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown projection head %', coalesce(head_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    FOR chunk IN
        WITH stale AS (
            SELECT m.id, m.clip_id, m.embedding, row_number() OVER (ORDER BY m.id) AS position
            FROM moment_embeddings m
            JOIN embedding_variants w
              ON w.id = m.variant_id AND w.generation_strategy = 'video_moment_windows'
            JOIN embedding_variants b ON b.id = h.base_variant_id AND b.model_name = w.model_name
            LEFT JOIN projected_moment_embeddings p
              ON p.projection_head_id = h.id AND p.moment_embedding_id = m.id
            WHERE vector_dims(m.embedding) = h.input_dim
              AND (p.moment_embedding_id IS NULL OR p.inserted_at < m.updated_at)
        )
        SELECT array_agg(s.id ORDER BY s.id) AS ids, array_agg(s.clip_id ORDER BY s.id) AS clips,
               array_agg(s.embedding ORDER BY s.id) AS vectors
        FROM stale s
        GROUP BY (s.position - 1) / 2000
    LOOP
        INSERT INTO projected_moment_embeddings
            (moment_embedding_id, projection_head_id, clip_id, embedding)
        SELECT u.id, h.id, u.clip_id, u.projected
        FROM unnest(chunk.ids, chunk.clips, apply_head_batch(h.id, chunk.vectors))
            AS u(id, clip_id, projected)
        ON CONFLICT (moment_embedding_id, projection_head_id)
        DO UPDATE SET embedding = EXCLUDED.embedding, clip_id = EXCLUDED.clip_id,
                      inserted_at = now();
        written := written + cardinality(chunk.ids);
    END LOOP;
    RETURN written;
END;
$$;
REVOKE ALL ON FUNCTION project_stale_moment_embeddings(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION project_stale_moment_embeddings(integer) TO heaters_worker;
