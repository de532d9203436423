-- Refuses a sorting event that cannot be a real choice, with a message naming the problem.
-- SECURITY DEFINER: the sorter role may insert events without reading the clips table.
CREATE OR REPLACE FUNCTION validate_sorting_event()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    unknown integer[];
BEGIN
    IF NEW.sorting_mode IS NULL OR NEW.sorting_mode NOT IN ('trick_similarity', 'spot_similarity') THEN
        RAISE EXCEPTION 'sorting event refused: sorting_mode must be trick_similarity or spot_similarity, got %',
            coalesce(quote_literal(NEW.sorting_mode), 'NULL') USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.candidate_clip_ids IS NULL OR cardinality(NEW.candidate_clip_ids) = 0 THEN
        RAISE EXCEPTION 'sorting event refused: candidate_clip_ids is empty (nothing was shown)'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.anchor_clip_id IS NULL THEN
        RAISE EXCEPTION 'sorting event refused: anchor_clip_id is NULL' USING ERRCODE = 'check_violation';
    END IF;
    IF cardinality(NEW.candidate_clip_ids) > heaters_setting('max_candidates_per_event')::integer THEN
        RAISE EXCEPTION 'sorting event refused: % candidates, at most % per event (setting max_candidates_per_event)',
            cardinality(NEW.candidate_clip_ids), heaters_setting('max_candidates_per_event')
            USING ERRCODE = 'check_violation';
    END IF;
    IF array_ndims(NEW.candidate_clip_ids) > 1 OR array_ndims(NEW.rejected_clip_ids) > 1 THEN
        RAISE EXCEPTION 'sorting event refused: clip id lists must be one-dimensional arrays'
            USING ERRCODE = 'check_violation';
    END IF;
    IF array_position(NEW.candidate_clip_ids, NULL) IS NOT NULL
       OR array_position(NEW.rejected_clip_ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'sorting event refused: clip id lists must not contain NULL'
            USING ERRCODE = 'check_violation';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(NEW.candidate_clip_ids) x) <> cardinality(NEW.candidate_clip_ids) THEN
        RAISE EXCEPTION 'sorting event refused: duplicate clip ids in candidate_clip_ids %', clip_id_list(NEW.candidate_clip_ids)
            USING ERRCODE = 'check_violation';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(NEW.rejected_clip_ids) x) <> cardinality(NEW.rejected_clip_ids) THEN
        RAISE EXCEPTION 'sorting event refused: duplicate clip ids in rejected_clip_ids %', clip_id_list(NEW.rejected_clip_ids)
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.anchor_clip_id = ANY (NEW.candidate_clip_ids) THEN
        RAISE EXCEPTION 'sorting event refused: anchor clip % is among its own candidates', NEW.anchor_clip_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.selected_clip_id IS NOT NULL AND NOT (NEW.selected_clip_id = ANY (NEW.candidate_clip_ids)) THEN
        RAISE EXCEPTION 'sorting event refused: selected clip % is not among the candidates %',
            NEW.selected_clip_id, clip_id_list(NEW.candidate_clip_ids) USING ERRCODE = 'check_violation';
    END IF;
    IF NOT (NEW.rejected_clip_ids <@ NEW.candidate_clip_ids) THEN
        RAISE EXCEPTION 'sorting event refused: rejected clips % are not among the candidates %',
            clip_id_list(ARRAY(SELECT x FROM unnest(NEW.rejected_clip_ids) x WHERE NOT x = ANY (NEW.candidate_clip_ids))),
            clip_id_list(NEW.candidate_clip_ids) USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.selected_clip_id = ANY (NEW.rejected_clip_ids) THEN
        RAISE EXCEPTION 'sorting event refused: selected clip % is also listed as rejected', NEW.selected_clip_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.response_time_ms < 0 THEN
        RAISE EXCEPTION 'sorting event refused: response_time_ms must not be negative, got %', NEW.response_time_ms
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT array_agg(x ORDER BY x) INTO unknown
    FROM unnest(NEW.anchor_clip_id || NEW.candidate_clip_ids) x
    WHERE NOT EXISTS (SELECT 1 FROM clips c WHERE c.id = x);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'sorting event refused: unknown clip ids %', clip_id_list(unknown)
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- Append-only rows carry their insertion time; clients cannot backdate them.
    NEW.inserted_at := now();
    NEW.updated_at := NEW.inserted_at;
    RETURN NEW;
END;
$$;
