-- The default embedding variant: what similar_clips serves before a mode has an active head.
CREATE OR REPLACE FUNCTION default_variant() RETURNS embedding_variants
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT found.* FROM required((SELECT v FROM embedding_variants v WHERE v.is_default),
        'no default embedding variant: run heaters-db variant add MODEL STRATEGY --default',
        'object_not_in_prerequisite_state') found;
$$;
