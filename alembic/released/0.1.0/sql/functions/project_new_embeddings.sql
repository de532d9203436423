-- Trigger body (AFTER INSERT / AFTER UPDATE ON embeddings, statement level): every new or changed
-- embedding is passed through each ACTIVE projection head whose base variant it belongs to
-- (apply_head), and the result upserted into projected_embeddings. So a clip embedded after a
-- head went live is searchable in that head's space at once. Heads being re-projected (status
-- candidate) are caught up by activate_head; retired heads when they are re-activated.
-- An embedding whose dimension does not fit the head is left alone (never fail the embed write).
-- SECURITY DEFINER: whoever writes embeddings (the daemon, heaters itself) need not be allowed
-- to call apply_head or write projected_embeddings.
CREATE OR REPLACE FUNCTION project_new_embeddings()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM projection_heads h WHERE h.status = 'active') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO projected_embeddings (clip_id, projection_head_id, embedding)
        SELECT n.clip_id, h.id, apply_head(h.id, n.embedding)
        FROM new_rows n
        JOIN embedding_variants v
          ON v.model_name = n.model_name AND v.generation_strategy = n.generation_strategy
        JOIN projection_heads h ON h.base_variant_id = v.id AND h.status = 'active'
        WHERE vector_dims(n.embedding) = h.input_dim
        ORDER BY n.clip_id, h.id
        ON CONFLICT (clip_id, projection_head_id)
        DO UPDATE SET embedding = EXCLUDED.embedding, updated_at = now();
    ELSE
        INSERT INTO projected_embeddings (clip_id, projection_head_id, embedding)
        SELECT n.clip_id, h.id, apply_head(h.id, n.embedding)
        FROM new_rows n
        JOIN old_rows o ON o.id = n.id
        JOIN embedding_variants v
          ON v.model_name = n.model_name AND v.generation_strategy = n.generation_strategy
        JOIN projection_heads h ON h.base_variant_id = v.id AND h.status = 'active'
        WHERE vector_dims(n.embedding) = h.input_dim
          AND (n.embedding IS DISTINCT FROM o.embedding OR n.clip_id IS DISTINCT FROM o.clip_id
               OR n.model_name IS DISTINCT FROM o.model_name
               OR n.generation_strategy IS DISTINCT FROM o.generation_strategy)
        ORDER BY n.clip_id, h.id
        ON CONFLICT (clip_id, projection_head_id)
        DO UPDATE SET embedding = EXCLUDED.embedding, updated_at = now();
    END IF;
    RETURN NULL;
END;
$$;
