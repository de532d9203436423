-- Refuses a sorting event that cannot be a real choice, with a message naming the problem, and
-- gives it its id from the sequence (an id the client sent is replaced: ids decide the retraining
-- watermark, so no client may choose one). Provenance: anchor_reason is one of next_anchors'
-- reasons, 'random' (the client's own uniform pick) or 'manual' (not said); candidate_sources,
-- when given, names one source per candidate. An evaluation screen (anchor_reason 'evaluation')
-- must say that every candidate came from evaluation_candidates.
-- SECURITY DEFINER: the sorter role may insert events without reading the clips table.
CREATE OR REPLACE FUNCTION validate_sorting_event()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
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
    -- NULL says what '{}' says (nothing marked clearly wrong): the column's NOT NULL refused
    -- it with a raw constraint error and the whole row in its detail.
    NEW.rejected_clip_ids := coalesce(NEW.rejected_clip_ids, '{}');
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
    IF NEW.anchor_reason IS NULL OR NEW.anchor_reason NOT IN (
            'manual', 'random', 'evaluation', 'cold_start_medoid', 'ambiguous_margin',
            'head_base_disagreement', 'least_asked', 'least_recently_used') THEN
        RAISE EXCEPTION 'sorting event refused: anchor_reason must be manual, random, evaluation or a reason next_anchors returns, got %',
            coalesce(quote_literal(NEW.anchor_reason), 'NULL') USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.candidate_sources IS NOT NULL THEN
        IF array_ndims(NEW.candidate_sources) > 1 THEN
            RAISE EXCEPTION 'sorting event refused: candidate_sources must be a one-dimensional array, got %',
                NEW.candidate_sources USING ERRCODE = 'check_violation';
        END IF;
        IF coalesce(cardinality(NEW.candidate_sources), 0) <> cardinality(NEW.candidate_clip_ids) THEN
            RAISE EXCEPTION 'sorting event refused: candidate_sources must name one source per candidate (% candidates, % sources)',
                cardinality(NEW.candidate_clip_ids), coalesce(cardinality(NEW.candidate_sources), 0)
                USING ERRCODE = 'check_violation';
        END IF;
        IF EXISTS (SELECT 1 FROM unnest(NEW.candidate_sources) x
                   WHERE x IS NULL OR x NOT IN ('nearest', 'base', 'control', 'evaluation_base',
                                                'evaluation_random', 'manual')) THEN
            RAISE EXCEPTION 'sorting event refused: unknown candidate source in % (known: nearest, base, control, evaluation_base, evaluation_random, manual)',
                NEW.candidate_sources USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.anchor_reason = 'evaluation' AND (NEW.candidate_sources IS NULL OR EXISTS (
            SELECT 1 FROM unnest(NEW.candidate_sources) x WHERE x NOT LIKE 'evaluation\_%')) THEN
        RAISE EXCEPTION 'sorting event refused: an evaluation screen''s candidates must all come from evaluation_candidates, got sources %',
            coalesce(NEW.candidate_sources::text, 'NULL') USING ERRCODE = 'check_violation';
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
    -- Ids come from the sequence only (the column has no default: this is where they are made).
    NEW.id := nextval('clip_sorting_events_id_seq'::regclass);
    -- Append-only rows carry their insertion time; clients cannot backdate them.
    NEW.inserted_at := now();
    NEW.updated_at := NEW.inserted_at;
    RETURN NEW;
END;
$$;
