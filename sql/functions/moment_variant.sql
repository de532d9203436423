-- The window variant (video_moment_windows) that serves moments in a mode: the enabled one of the
-- model of the mode's active head's base variant, else of the default variant's model (lowest id
-- when several). So window vectors share the space (model, dimension) the head was trained on.
CREATE OR REPLACE FUNCTION moment_variant(mode text)
RETURNS embedding_variants
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    head_id integer := active_head_id(mode);  -- also validates the mode
    base embedding_variants;
    v embedding_variants;
BEGIN
    IF head_id IS NOT NULL THEN
        SELECT b.* INTO base FROM projection_heads h JOIN embedding_variants b ON b.id = h.base_variant_id
        WHERE h.id = head_id;
    ELSE
        base := default_variant();
    END IF;
    SELECT * INTO v FROM embedding_variants w
    WHERE w.generation_strategy = 'video_moment_windows' AND w.model_name = base.model_name AND w.enabled
    ORDER BY w.id LIMIT 1;
    IF NOT FOUND THEN
        -- A disabled one is not "no variant": its windows may still be there, and `variant add`
        -- enables it again with its shape.
        IF EXISTS (SELECT 1 FROM embedding_variants w
                   WHERE w.generation_strategy = 'video_moment_windows'
                     AND w.model_name = base.model_name) THEN
            RAISE EXCEPTION 'the window variant of model % is disabled: heaters-db variant add % video_moment_windows enables it again',
                base.model_name, base.model_name
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RAISE EXCEPTION 'no window variant of model %: heaters-db variant add % video_moment_windows',
            base.model_name, base.model_name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN v;
END;
$$;
