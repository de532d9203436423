-- Undoes the last activation of a mode: retires its active head and re-activates the head that
-- activation replaced (projection_head_activations, revision 0027), whatever their versions:
-- after v1, v2 and then v1 again by hand, a rollback brings v2 back. Rolling back again undoes
-- the activation before (a stack); past the recorded history (heads activated before 0027) it
-- re-activates the retired head with the highest version below the active one, the rule before
-- 0027. Rolling back the first activation leaves the mode served by the base variant. A
-- rollback is not an activation of its own: it undoes one. The head it brings back kept its
-- projected rows and index (activate_head refreshes what changed meanwhile), so similar_clips
-- returns what it returned before.
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
    last_activation projection_head_activations;
    previous_id integer;
    result jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('heaters_db.activate_head'), hashtext(stored_mode));
    SELECT * INTO current_head FROM projection_heads p
    WHERE p.mode = stored_mode AND p.status = 'active' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no active % head to roll back', stored_mode
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT * INTO last_activation FROM projection_head_activations a
    WHERE a.mode = stored_mode AND a.undone_at IS NULL
    ORDER BY a.id DESC LIMIT 1 FOR UPDATE;
    IF last_activation.head_id = current_head.id THEN
        UPDATE projection_head_activations a SET undone_at = now() WHERE a.id = last_activation.id;
        SELECT p.id INTO previous_id FROM projection_heads p
        WHERE p.id = last_activation.replaced_head_id AND p.status = 'retired';
    ELSE
        SELECT p.id INTO previous_id FROM projection_heads p
        WHERE p.mode = stored_mode AND p.status = 'retired' AND p.version < current_head.version
        ORDER BY p.version DESC LIMIT 1;
    END IF;
    IF previous_id IS NULL THEN
        UPDATE projection_heads p SET status = 'retired', updated_at = now() WHERE p.id = current_head.id;
        RETURN jsonb_build_object('head_id', NULL, 'mode', stored_mode, 'version', NULL,
                                  'retired_head_id', current_head.id, 'caught_up', 0);
    END IF;
    result := activate_head(previous_id);
    DELETE FROM projection_head_activations a WHERE a.id = (result ->> 'activation_id')::integer;
    RETURN result - 'activation_id';
END;
$$;
