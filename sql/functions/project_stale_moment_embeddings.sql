-- Catches up a head's window projections (projected_moment_embeddings) the way
-- refresh_head_projections catches up its clip rows: every window vector of its base model that
-- has no projection under the head (written while the head was retired: the moment trigger
-- projects under active and candidate heads only), or whose projection is older than the window
-- (moment_embeddings.updated_at after the projection's inserted_at, which a refresh resets), is
-- projected again. 2000 windows at a time in window id order, one apply_head_batch call each
-- (no per-row PL/Python). activate_head calls it, so rollback_head to a retired head serves
-- fresh windows. Returns the rows written.
--   SELECT project_stale_moment_embeddings(7);
CREATE OR REPLACE FUNCTION project_stale_moment_embeddings(head_id integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads := projection_head_by_id(head_id);
    ids integer[];
    clips integer[];
    vectors vector[];
    after_id integer := 0;
    written integer := 0;
BEGIN
    LOOP
        SELECT array_agg(s.id ORDER BY s.id), array_agg(s.clip_id ORDER BY s.id),
               array_agg(s.embedding ORDER BY s.id)
        INTO ids, clips, vectors
        FROM (
            SELECT m.id, m.clip_id, m.embedding
            FROM moment_embeddings m
            JOIN embedding_variants w
              ON w.id = m.variant_id AND w.generation_strategy = 'video_moment_windows'
            JOIN embedding_variants b ON b.id = h.base_variant_id AND b.model_name = w.model_name
            LEFT JOIN projected_moment_embeddings p
              ON p.projection_head_id = h.id AND p.moment_embedding_id = m.id
            WHERE m.id > after_id AND vector_dims(m.embedding) = h.input_dim
              AND (p.moment_embedding_id IS NULL OR p.inserted_at < m.updated_at)
            ORDER BY m.id
            LIMIT 2000
        ) s;
        EXIT WHEN ids IS NULL;
        INSERT INTO projected_moment_embeddings
            (moment_embedding_id, projection_head_id, clip_id, embedding)
        SELECT u.id, h.id, u.clip_id, u.projected
        FROM unnest(ids, clips, apply_head_batch(h.id, vectors)) AS u(id, clip_id, projected)
        ON CONFLICT (moment_embedding_id, projection_head_id)
        DO UPDATE SET embedding = EXCLUDED.embedding, clip_id = EXCLUDED.clip_id,
                      inserted_at = now();
        written := written + cardinality(ids);
        after_id := ids[cardinality(ids)];
    END LOOP;
    RETURN written;
END;
$$;
REVOKE ALL ON FUNCTION project_stale_moment_embeddings(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION project_stale_moment_embeddings(integer) TO heaters_worker;
