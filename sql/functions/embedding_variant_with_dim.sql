-- One embedding variant that has a dimension, or the error every index and search function over
-- it gives: an unknown variant, or one none of whose clips is embedded yet (no dimension, so no
-- index expression). variant_index_definition, ensure_moment_index and nearest_in_variant use it.
CREATE OR REPLACE FUNCTION embedding_variant_with_dim(variant_id integer)
RETURNS embedding_variants
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    v embedding_variants;
BEGIN
    SELECT * INTO v FROM embedding_variants ev WHERE ev.id = variant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown embedding variant %', variant_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v.dim IS NULL THEN
        RAISE EXCEPTION 'embedding variant % (% / %) has no dimension yet: embed a clip first',
            v.id, v.model_name, v.generation_strategy USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN v;
END;
$$;
