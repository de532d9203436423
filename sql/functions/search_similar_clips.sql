-- similar_clips' body (the public wrapper is LANGUAGE sql only because PL/pgSQL cannot have an
-- input and an output column both named clip_id). The active head of the mode serves the query
-- when there is one, else the default variant.
CREATE OR REPLACE FUNCTION search_similar_clips(query_clip_id integer, mode text, k integer)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    head_id integer := active_head_id(mode);  -- also validates the mode
    variant embedding_variants;
BEGIN
    PERFORM checked_k(k);
    IF query_clip_id IS NULL OR NOT EXISTS (SELECT 1 FROM clips c WHERE c.id = query_clip_id) THEN
        RAISE EXCEPTION 'unknown clip %', coalesce(query_clip_id::text, 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    IF head_id IS NOT NULL THEN
        RETURN QUERY SELECT * FROM nearest_in_head(head_id, clip_head_embedding(query_clip_id, head_id), k, query_clip_id);
    ELSE
        variant := default_variant();
        RETURN QUERY SELECT * FROM nearest_in_variant(variant.id, clip_base_embedding(query_clip_id, variant.id), k, query_clip_id);
    END IF;
END;
$$;
