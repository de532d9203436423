-- The default embedding variant: what similar_clips serves before a mode has an active head.
CREATE OR REPLACE FUNCTION default_variant()
RETURNS embedding_variants
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    v embedding_variants;
BEGIN
    SELECT * INTO v FROM embedding_variants WHERE is_default;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no default embedding variant: run heaters-db variant add MODEL STRATEGY --default'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN v;
END;
$$;
