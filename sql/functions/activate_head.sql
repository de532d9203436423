-- Makes a projection head the one that serves its mode, in one transaction, so a query sees
-- either the old head or the new one, complete:
--   1. projects the clips of its base variant whose row is missing or stale (embedded or
--      re-embedded while the head was re-projected or retired: refresh_head_projections),
--      first without a lock (the bulk, then what was written meanwhile, up to 5 passes until
--      at most 16 rows were left), then again under the lock (what changed since);
--      the same for its window projections (project_stale_moment_embeddings: windows written
--      while the head was retired), so rollback_head serves fresh clip and moment vectors;
--   2. makes sure its HNSW index exists (normally built already by the re-projection);
--   3. retires the mode's active head (its rows and index are kept, for rollback_head);
--   4. marks this head active, activated_at = now(), and records the activation (the head it
--      replaced: projection_head_activations, what rollback_head undoes).
-- Only a candidate (passed the gate, re-projected) or a retired head can be activated.
-- The embeddings and moment_embeddings tables are locked in SHARE mode from the second pass
-- on: a vector written concurrently either is caught up here or, once this commits, is
-- projected by the triggers under the new head; none falls in between. Writers wait only for
-- the second pass (a checksum scan of the variant and the few rows that changed meanwhile,
-- batched: no per-row PL/Python under the lock; benchmarks/write_path.py measures the wait).
-- Returns {"head_id", "mode", "version", "retired_head_id", "caught_up", "moments_caught_up",
-- "activation_id"}.
--   SELECT activate_head(7);
CREATE OR REPLACE FUNCTION activate_head(head_id integer)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads;
    retired_id integer;
    activation_id integer;
    caught_up integer;
    moments_caught_up integer;
    clips_written integer;
    windows_written integer;
    unlocked_passes constant integer := 5;
    few_rows constant integer := 16;
BEGIN
    h := projection_head_by_id(head_id);
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
    -- Without a lock: the bulk, then again what was written meanwhile, until little is left
    -- (a writer's rows during one pass are the next pass's work, so the passes shrink and the
    -- pass under the lock has next to nothing to project).
    caught_up := 0;
    moments_caught_up := 0;
    FOR pass IN 1..unlocked_passes LOOP
        clips_written := refresh_head_projections(h.id);
        windows_written := project_stale_moment_embeddings(h.id);
        caught_up := caught_up + clips_written;
        moments_caught_up := moments_caught_up + windows_written;
        EXIT WHEN clips_written + windows_written <= few_rows;
    END LOOP;
    LOCK TABLE embeddings, moment_embeddings IN SHARE MODE;
    caught_up := caught_up + refresh_head_projections(h.id);
    moments_caught_up := moments_caught_up + project_stale_moment_embeddings(h.id);
    PERFORM ensure_head_index(h.id);
    UPDATE projection_heads p SET status = 'retired', updated_at = now()
    WHERE p.mode = h.mode AND p.status = 'active'
    RETURNING p.id INTO retired_id;
    UPDATE projection_heads p SET status = 'active', activated_at = now(), updated_at = now()
    WHERE p.id = h.id;
    INSERT INTO projection_head_activations (mode, head_id, replaced_head_id)
    VALUES (h.mode, h.id, retired_id)
    RETURNING id INTO activation_id;
    RETURN jsonb_build_object('head_id', h.id, 'mode', h.mode, 'version', h.version,
                              'retired_head_id', retired_id, 'caught_up', caught_up,
                              'moments_caught_up', moments_caught_up,
                              'activation_id', activation_id);
END;
$$;
