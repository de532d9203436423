-- Undoes the last activation of a mode: retires its active head and re-activates the retired head
-- with the highest version below it (activate_head). That head's projected rows and index were
-- kept, so similar_clips returns exactly what it returned before. Rolling back again goes one
-- version further back; rolling back the only head leaves the mode served by the base variant.
-- Returns {"head_id", "mode", "version", "retired_head_id", "caught_up"} (head_id NULL when
-- the base variant serves the mode now).
--   SELECT rollback_head('trick');
CREATE OR REPLACE FUNCTION rollback_head(mode text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    stored_mode text := sorting_mode(mode);
    current_head projection_heads;
    previous_id integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('heaters_db.activate_head'), hashtext(stored_mode));
    SELECT * INTO current_head FROM projection_heads p
    WHERE p.mode = stored_mode AND p.status = 'active' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no active % head to roll back', stored_mode
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT p.id INTO previous_id FROM projection_heads p
    WHERE p.mode = stored_mode AND p.status = 'retired' AND p.version < current_head.version
    ORDER BY p.version DESC LIMIT 1;
    IF previous_id IS NULL THEN
        UPDATE projection_heads p SET status = 'retired', updated_at = now() WHERE p.id = current_head.id;
        RETURN jsonb_build_object('head_id', NULL, 'mode', stored_mode, 'version', NULL,
                                  'retired_head_id', current_head.id, 'caught_up', 0);
    END IF;
    RETURN activate_head(previous_id);
END;
$$;
