-- Makes a projection head the one that serves its mode, in one transaction, so a query sees
-- either the old head or the new one, complete:
--   1. projects the clips of its base variant that have no projected row yet (embedded while the
--      head was re-projected, or while it was retired) with apply_head;
--   2. makes sure its HNSW index exists (normally built already by the re-projection);
--   3. retires the mode's active head (its rows and index are kept, for rollback_head);
--   4. marks this head active, activated_at = now().
-- Only a candidate (passed the gate, re-projected) or a retired head can be activated.
-- The embeddings table is locked in SHARE mode for the duration: an embedding written
-- concurrently either is caught up here or, once this commits, is projected by the
-- embeddings trigger under the new head; none falls in between.
-- Returns {"head_id", "mode", "version", "retired_head_id", "caught_up"}.
--   SELECT activate_head(7);
CREATE OR REPLACE FUNCTION activate_head(head_id integer)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads;
    v embedding_variants;
    retired_id integer;
    caught_up integer;
BEGIN
    SELECT * INTO h FROM projection_heads p WHERE p.id = head_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown projection head %', coalesce(head_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    -- One activation (or rollback) per mode at a time; then re-read the row under the lock.
    PERFORM pg_advisory_xact_lock(hashtext('heaters_db.activate_head'), hashtext(h.mode));
    SELECT * INTO h FROM projection_heads p WHERE p.id = head_id FOR UPDATE;
    IF h.status NOT IN ('candidate', 'retired') THEN
        RAISE EXCEPTION 'projection head % (% version %) is %: only a candidate or a retired head can be activated',
            h.id, h.mode, h.version, h.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE h.status
                      WHEN 'active' THEN 'it already serves its mode'
                      WHEN 'rejected' THEN 'it failed the held-out gate; see its metrics (heaters-db heads list)'
                      ELSE 'it is still training' END;
    END IF;
    SELECT * INTO v FROM embedding_variants ev WHERE ev.id = h.base_variant_id;
    LOCK TABLE embeddings IN SHARE MODE;
    INSERT INTO projected_embeddings (clip_id, projection_head_id, embedding)
    SELECT e.clip_id, h.id, apply_head(h.id, e.embedding)
    FROM embeddings e
    WHERE e.model_name = v.model_name AND e.generation_strategy = v.generation_strategy
      AND vector_dims(e.embedding) = h.input_dim
      AND NOT EXISTS (SELECT 1 FROM projected_embeddings p
                      WHERE p.projection_head_id = h.id AND p.clip_id = e.clip_id)
    ORDER BY e.clip_id
    ON CONFLICT (clip_id, projection_head_id) DO NOTHING;
    GET DIAGNOSTICS caught_up = ROW_COUNT;
    PERFORM ensure_head_index(h.id);
    UPDATE projection_heads p SET status = 'retired', updated_at = now()
    WHERE p.mode = h.mode AND p.status = 'active'
    RETURNING p.id INTO retired_id;
    UPDATE projection_heads p SET status = 'active', activated_at = now(), updated_at = now()
    WHERE p.id = h.id;
    RETURN jsonb_build_object('head_id', h.id, 'mode', h.mode, 'version', h.version,
                              'retired_head_id', retired_id, 'caught_up', caught_up);
END;
$$;
