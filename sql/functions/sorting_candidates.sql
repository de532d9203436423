-- Public API: the clips to show next to an anchor on one sorting screen.
--   SELECT * FROM sorting_candidates(42, 'trick');      -- 8 candidates
--   SELECT * FROM sorting_candidates(42, 'spot', 6);
-- Mostly the anchor's nearest clips in the current space (the active head of the mode, else the
-- default variant; source 'nearest'); with an active head, one or two of the anchor's base-space
-- neighbours that the head does not rank in its top 3n (source 'base': does the head miss
-- something?); one mid-rank control drawn from ranks 3n..10n (source 'control': a calibration
-- point the person should rarely pick). Never the anchor, never a near-duplicate of the anchor or
-- of another candidate (cosine distance below the near_duplicate_distance setting), positions
-- 1..n shuffled so screen order says nothing about rank. distance = cosine distance to the anchor
-- in the current space. Fewer than n rows only when the library is that small (or when more than
-- the nearest 1000 clips are near-duplicates of the anchor).
CREATE OR REPLACE FUNCTION sorting_candidates(anchor integer, mode text DEFAULT 'trick', n integer DEFAULT 8)
RETURNS TABLE (clip_id integer, "position" integer, source text, distance double precision)
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    head_id integer := active_head_id(mode);  -- also validates the mode
    base_variant_id integer;
    variant embedding_variants;
    anchor_vector vector;
    duplicate double precision := heaters_setting('near_duplicate_distance')::double precision;
    ranked_ids integer[];
    ranked_distances double precision[];
    ranked_vectors vector[];
    ranked integer;
    depth integer := least(greatest(10 * n, 30), 1000);
    high_rank integer := 3 * n;  -- the head "ranks high" what it puts in its top 3n
    control_wanted integer;
    base_wanted integer;
    nearest_wanted integer;
    picked_ids integer[] := '{}';
    picked_vectors vector[] := '{}';
    picked_sources text[] := '{}';
    picked_distances double precision[] := '{}';
    candidate record;
    candidate_vector vector;
    i integer;
BEGIN
    IF n IS NULL OR n < 1 OR n > 100 THEN
        RAISE EXCEPTION 'n must be between 1 and 100, got %', coalesce(n::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF anchor IS NULL OR NOT EXISTS (SELECT 1 FROM clips c WHERE c.id = anchor) THEN
        RAISE EXCEPTION 'unknown clip %', coalesce(anchor::text, 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    -- Normally one pass. When all `depth` neighbours searched gave fewer than n clips (a crowd of
    -- near-duplicates of the anchor filled them), once more as deep as an index search goes.
    LOOP
        picked_ids := '{}'; picked_vectors := '{}'; picked_sources := '{}'; picked_distances := '{}';
        control_wanted := CASE WHEN n >= 3 THEN 1 ELSE 0 END;
        base_wanted := CASE WHEN head_id IS NULL THEN 0 WHEN n >= 8 THEN 2 WHEN n >= 4 THEN 1 ELSE 0 END;
        nearest_wanted := n - control_wanted - base_wanted;

        -- The current space's ranking of the anchor's neighbours (top 10n), with their vectors.
        IF head_id IS NOT NULL THEN
            SELECT h.base_variant_id INTO base_variant_id FROM projection_heads h WHERE h.id = head_id;
            anchor_vector := clip_head_embedding(anchor, head_id);
            SELECT array_agg(nb.clip_id ORDER BY nb.rank), array_agg(nb.distance ORDER BY nb.rank),
                   array_agg(p.embedding ORDER BY nb.rank)
            INTO ranked_ids, ranked_distances, ranked_vectors
            FROM nearest_in_head(head_id, anchor_vector, depth, anchor) nb
            JOIN projected_embeddings p ON p.clip_id = nb.clip_id AND p.projection_head_id = head_id;
        ELSE
            variant := default_variant();
            anchor_vector := clip_base_embedding(anchor, variant.id);
            SELECT array_agg(nb.clip_id ORDER BY nb.rank), array_agg(nb.distance ORDER BY nb.rank),
                   array_agg(e.embedding ORDER BY nb.rank)
            INTO ranked_ids, ranked_distances, ranked_vectors
            FROM nearest_in_variant(variant.id, anchor_vector, depth, anchor) nb
            JOIN embeddings e ON e.clip_id = nb.clip_id AND e.model_name = variant.model_name
                             AND e.generation_strategy = variant.generation_strategy;
        END IF;
        ranked := coalesce(cardinality(ranked_ids), 0);

        -- Nearest first, skipping near-duplicates of the anchor and of the clips already taken.
        FOR i IN 1 .. ranked LOOP
            EXIT WHEN cardinality(picked_ids) >= nearest_wanted;
            CONTINUE WHEN ranked_distances[i] < duplicate
                OR EXISTS (SELECT 1 FROM unnest(picked_vectors) v WHERE (v <=> ranked_vectors[i]) < duplicate);
            picked_ids := picked_ids || ranked_ids[i];
            picked_vectors := picked_vectors || ranked_vectors[i];
            picked_sources := picked_sources || 'nearest'::text;
            picked_distances := picked_distances || ranked_distances[i];
        END LOOP;

        -- Base-space neighbours the head does not rank high, in base order.
        IF base_wanted > 0 THEN
            FOR candidate IN
                SELECT nb.clip_id FROM nearest_in_variant(base_variant_id,
                    clip_base_embedding(anchor, base_variant_id), 2 * n, anchor) nb
                ORDER BY nb.rank
            LOOP
                EXIT WHEN base_wanted = 0;
                CONTINUE WHEN candidate.clip_id = ANY (ranked_ids[1:high_rank])
                    OR candidate.clip_id = ANY (picked_ids);
                candidate_vector := clip_head_embedding(candidate.clip_id, head_id);
                CONTINUE WHEN (candidate_vector <=> anchor_vector) < duplicate
                    OR EXISTS (SELECT 1 FROM unnest(picked_vectors) v WHERE (v <=> candidate_vector) < duplicate);
                picked_ids := picked_ids || candidate.clip_id;
                picked_vectors := picked_vectors || candidate_vector;
                picked_sources := picked_sources || 'base'::text;
                picked_distances := picked_distances || (candidate_vector <=> anchor_vector)::double precision;
                base_wanted := base_wanted - 1;
            END LOOP;
        END IF;

        -- One control from the middle of the ranking (ranks 3n..10n, or what a small library has).
        IF control_wanted > 0 THEN
            FOR i IN
                SELECT r FROM generate_series(least(high_rank, greatest(ranked, 1)), ranked) r ORDER BY random()
            LOOP
                CONTINUE WHEN ranked_ids[i] = ANY (picked_ids) OR ranked_distances[i] < duplicate
                    OR EXISTS (SELECT 1 FROM unnest(picked_vectors) v WHERE (v <=> ranked_vectors[i]) < duplicate);
                picked_ids := picked_ids || ranked_ids[i];
                picked_vectors := picked_vectors || ranked_vectors[i];
                picked_sources := picked_sources || 'control'::text;
                picked_distances := picked_distances || ranked_distances[i];
                EXIT;
            END LOOP;
        END IF;

        -- A base or control slot left empty goes to the next nearest clip.
        FOR i IN 1 .. ranked LOOP
            EXIT WHEN cardinality(picked_ids) >= n;
            CONTINUE WHEN ranked_ids[i] = ANY (picked_ids) OR ranked_distances[i] < duplicate
                OR EXISTS (SELECT 1 FROM unnest(picked_vectors) v WHERE (v <=> ranked_vectors[i]) < duplicate);
            picked_ids := picked_ids || ranked_ids[i];
            picked_vectors := picked_vectors || ranked_vectors[i];
            picked_sources := picked_sources || 'nearest'::text;
            picked_distances := picked_distances || ranked_distances[i];
        END LOOP;

        EXIT WHEN cardinality(picked_ids) >= n OR ranked < depth OR depth >= 1000;
        depth := 1000;
    END LOOP;

    RETURN QUERY
        SELECT s.id, s.shuffled::integer, s.kind, s.gap
        FROM (SELECT t.id, t.kind, t.gap, row_number() OVER (ORDER BY random()) AS shuffled
              FROM unnest(picked_ids, picked_sources, picked_distances) AS t(id, kind, gap)) s
        ORDER BY s.shuffled;
END;
$$;

-- The anchor and n sent as bigint, smallint or numeric (functions/integral_argument.sql); integer literals pick the function above.
CREATE OR REPLACE FUNCTION sorting_candidates(anchor double precision, mode text DEFAULT 'trick', n double precision DEFAULT 8)
RETURNS TABLE (clip_id integer, "position" integer, source text, distance double precision)
LANGUAGE sql VOLATILE
SET search_path = public, pg_temp
AS $$
    SELECT * FROM sorting_candidates(integral_argument($1, 'anchor'), $2, integral_argument($3, 'n'));
$$;
