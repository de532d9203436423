-- Trigger body (AFTER DELETE / AFTER UPDATE ON embeddings, statement level): a clip that no
-- longer has a base vector of a head's variant (the embedding was deleted, or moved to another
-- clip, model or strategy) loses its projection under that head, whatever the head's status.
-- A projection is a derived row: kept, similar_clips would go on serving it, and the clip would
-- still come back in other clips' results, from a vector that no longer exists. Re-embedding the
-- clip later projects it again (functions/project_new_embeddings.sql, activate_head).
-- SECURITY DEFINER: whoever deletes embeddings (heaters itself) need not be allowed to write
-- projected_embeddings.
CREATE OR REPLACE FUNCTION drop_orphaned_projections()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    DELETE FROM projected_embeddings pe
    USING old_rows o, projection_heads p, embedding_variants v
    WHERE pe.clip_id = o.clip_id
      AND pe.projection_head_id = p.id
      AND v.id = p.base_variant_id
      AND o.model_name = v.model_name AND o.generation_strategy = v.generation_strategy
      AND NOT EXISTS (
          SELECT 1 FROM embeddings e
          WHERE e.clip_id = o.clip_id
            AND e.model_name = v.model_name AND e.generation_strategy = v.generation_strategy);
    RETURN NULL;
END;
$$;
