-- One embedding variant that has a dimension, or the error every index and search function over
-- it gives: an unknown variant, or one none of whose clips is embedded yet (no dimension, so no
-- index expression). variant_index_definition, ensure_moment_index and nearest_in_variant use it.
CREATE OR REPLACE FUNCTION embedding_variant_with_dim(variant_id integer) RETURNS embedding_variants
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT found.* FROM
        required((SELECT e FROM embedding_variants e WHERE e.id = $1),
                 format('unknown embedding variant %s', coalesce($1::text, 'NULL')), 'no_data_found') known,
        required(CASE WHEN known.dim IS NOT NULL THEN known END,
                 format('embedding variant %s (%s / %s) has no dimension yet: embed a clip first',
                        known.id, known.model_name, known.generation_strategy),
                 'object_not_in_prerequisite_state') found;
$$;
