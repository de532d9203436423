-- Trigger body (AFTER INSERT ON moment_embeddings, statement level): new window vectors are
-- projected under every head of their model that is active or a candidate (being re-projected
-- and about to go live), so similar_moments in a head's space finds them at once. A vector whose
-- dimension does not fit a head is left alone (never fail the embed write). The embed path
-- rewrites a clip's windows by DELETE + INSERT, so no UPDATE trigger is needed.
CREATE OR REPLACE FUNCTION project_new_moment_embeddings()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM projection_heads h WHERE h.status IN ('active', 'candidate')) THEN
        RETURN NULL;
    END IF;
    INSERT INTO projected_moment_embeddings (moment_embedding_id, projection_head_id, clip_id, embedding)
    SELECT n.id, h.id, n.clip_id, apply_head(h.id, n.embedding)
    FROM new_rows n
    JOIN embedding_variants w ON w.id = n.variant_id
    JOIN embedding_variants b ON b.model_name = w.model_name
    JOIN projection_heads h ON h.base_variant_id = b.id AND h.status IN ('active', 'candidate')
    WHERE vector_dims(n.embedding) = h.input_dim
    ORDER BY n.id, h.id
    ON CONFLICT (moment_embedding_id, projection_head_id)
    DO UPDATE SET embedding = EXCLUDED.embedding;
    RETURN NULL;
END;
$$;
