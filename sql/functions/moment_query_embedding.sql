-- The base vector of a time range of a clip: the mean of its windows (of window variant
-- `variant_id`) that cover at least half of the range or half of themselves; the window that
-- overlaps the range most when none does. Clear errors: unknown clip, no window embeddings yet
-- (with the state of the clip's embed job for the variant), a range outside the clip (the clip
-- ends where its last window ends; 0.1 s of slack for times rounded elsewhere).
CREATE OR REPLACE FUNCTION moment_query_embedding(query_clip_id integer, range_start double precision,
                                                  range_end double precision, variant_id integer)
RETURNS vector
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    v embedding_variants;
    clip_end double precision;
    found_embedding vector;
    range_length double precision;
BEGIN
    IF query_clip_id IS NULL OR NOT EXISTS (SELECT 1 FROM clips c WHERE c.id = query_clip_id) THEN
        RAISE EXCEPTION 'unknown clip %', coalesce(query_clip_id::text, 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO v FROM embedding_variants ev WHERE ev.id = variant_id;
    SELECT max(m.end_seconds) INTO clip_end FROM moment_embeddings m
    WHERE m.clip_id = query_clip_id AND m.variant_id = v.id;
    IF clip_end IS NULL THEN
        PERFORM raise_not_embedded(query_clip_id, v.id,
                                   format('window embeddings of %s / %s', v.model_name, v.generation_strategy));
    END IF;
    IF range_start IS NULL OR range_end IS NULL OR range_start < 0 OR range_end <= range_start
       OR range_end > clip_end + 0.1 THEN
        RAISE EXCEPTION 'time range %-% s is outside clip % (0-% s); give 0 <= start_seconds < end_seconds <= %',
            coalesce(range_start::text, 'NULL'), coalesce(range_end::text, 'NULL'), query_clip_id,
            round(clip_end::numeric, 3), round(clip_end::numeric, 3)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    range_length := least(range_end, clip_end) - range_start;
    SELECT avg(m.embedding) INTO found_embedding FROM moment_embeddings m
    WHERE m.clip_id = query_clip_id AND m.variant_id = v.id
      AND least(m.end_seconds, range_end) - greatest(m.start_seconds, range_start)
          >= 0.5 * least(range_length, m.end_seconds - m.start_seconds);
    IF found_embedding IS NULL THEN
        SELECT m.embedding INTO found_embedding FROM moment_embeddings m
        WHERE m.clip_id = query_clip_id AND m.variant_id = v.id
        ORDER BY least(m.end_seconds, range_end) - greatest(m.start_seconds, range_start) DESC, m.start_seconds
        LIMIT 1;
    END IF;
    RETURN found_embedding;
END;
$$;
