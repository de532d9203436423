-- Public API: the candidates of an evaluation screen, drawn without the live head.
--   SELECT * FROM next_anchors('trick');                 -- reason 'evaluation' for ~15 % of picks
--   SELECT * FROM evaluation_candidates(42, 'trick');    -- then show these, not sorting_candidates
-- Uniform draws from the clips embedded in the base variant (the active head's, else the default
-- variant; source 'evaluation_random'). No space chose them -- not a head, not the base space --
-- so the person's choice among them says how every space ranks a same-trick clip, without the
-- bias of a screen built from one space's neighbours (where that space already ranks whatever is
-- chosen near the top). The gate judges on these screens (heaters_db/heads/gate.py). The price:
-- in a library of many tricks more of these screens end as "none similar". Never the anchor,
-- never a near-duplicate of it (near_duplicate_distance), positions 1..n shuffled.
-- distance = cosine distance to the anchor in the base space. Fewer than n rows only when the
-- library holds fewer clips that may be shown. Never two near-duplicates of each other on one screen either, nor a clip
-- whose vector is all zeros. ('evaluation_base' stays a valid event source for clients that mix in
-- base-space neighbours themselves.)
CREATE OR REPLACE FUNCTION evaluation_candidates(anchor integer, mode text DEFAULT 'trick', n integer DEFAULT 8)
RETURNS TABLE (clip_id integer, "position" integer, source text, distance double precision)
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    head_id integer := active_head_id(mode);  -- also validates the mode
    variant embedding_variants;
    anchor_vector vector;
    duplicate double precision := heaters_setting('near_duplicate_distance')::double precision;
    picked_ids integer[] := '{}';
    picked_vectors vector[] := '{}';
    picked_sources text[] := '{}';
    picked_distances double precision[] := '{}';
    candidate record;
    draws integer := 4 * n;  -- a first pass of 4 n draws is enough unless duplicates crowd them
BEGIN
    IF n IS NULL OR n < 1 OR n > 100 THEN
        RAISE EXCEPTION 'n must be between 1 and 100, got %', coalesce(n::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF anchor IS NULL OR NOT EXISTS (SELECT 1 FROM clips c WHERE c.id = anchor) THEN
        RAISE EXCEPTION 'unknown clip %', coalesce(anchor::text, 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    IF head_id IS NOT NULL THEN
        SELECT v.* INTO variant FROM embedding_variants v
        JOIN projection_heads h ON h.base_variant_id = v.id WHERE h.id = head_id;
    ELSE
        variant := default_variant();
    END IF;
    anchor_vector := clip_base_embedding(anchor, variant.id);
    IF vector_norm(anchor_vector) = 0 THEN  -- as sorting_candidates and similar_clips refuse it
        RAISE EXCEPTION 'clip %''s embedding is all zeros: it has no cosine distance to anything', anchor
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOOP
        FOR candidate IN
            -- Ids first, distances of the few drawn only (not of every row of the library),
            -- kept in draw order: the join back to embeddings returns them in table order, and
            -- taking the first n of that drew the oldest clips of the library nearly every time.
            SELECT e.clip_id, e.embedding, (e.embedding <=> anchor_vector)::double precision AS distance
            FROM (SELECT d.clip_id, random() AS draw FROM embeddings d
                  WHERE d.model_name = variant.model_name
                    AND d.generation_strategy = variant.generation_strategy AND d.clip_id <> anchor
                  ORDER BY draw LIMIT draws) drawn
            JOIN embeddings e ON e.clip_id = drawn.clip_id AND e.model_name = variant.model_name
                             AND e.generation_strategy = variant.generation_strategy
            ORDER BY drawn.draw
        LOOP
            EXIT WHEN cardinality(picked_ids) >= n;
            -- NaN: an all-zero vector, at no distance from anything.
            CONTINUE WHEN candidate.clip_id = ANY (picked_ids) OR candidate.distance < duplicate
                OR candidate.distance = 'NaN'
                OR EXISTS (SELECT 1 FROM unnest(picked_vectors) v WHERE (v <=> candidate.embedding) < duplicate);
            picked_ids := picked_ids || candidate.clip_id;
            picked_vectors := picked_vectors || candidate.embedding;
            picked_sources := picked_sources || 'evaluation_random'::text;
            picked_distances := picked_distances || candidate.distance;
        END LOOP;
        EXIT WHEN cardinality(picked_ids) >= n OR draws IS NULL;
        -- Near-duplicates (a library of many takes of one clip) or all-zero vectors filled the
        -- 4 n draws: one more pass draws from the whole library (LIMIT NULL), keeping what the
        -- first pass picked, so the screen is short only when the library is.
        draws := NULL;
    END LOOP;

    -- Positions shuffled: the picks are in draw order, but a second pass appends its own.
    RETURN QUERY
        SELECT s.id, s.shuffled::integer, s.kind, s.gap
        FROM (SELECT t.id, t.kind, t.gap, row_number() OVER (ORDER BY random()) AS shuffled
              FROM unnest(picked_ids, picked_sources, picked_distances) AS t(id, kind, gap)) s
        ORDER BY s.shuffled;
END;
$$;

-- The same for an anchor and n sent as bigint, smallint or numeric (functions/integral_argument.sql).
CREATE OR REPLACE FUNCTION evaluation_candidates(anchor double precision, mode text DEFAULT 'trick', n double precision DEFAULT 8)
RETURNS TABLE (clip_id integer, "position" integer, source text, distance double precision)
LANGUAGE sql VOLATILE
SET search_path = public, pg_temp
AS $$
    SELECT * FROM evaluation_candidates(integral_argument($1, 'anchor'), $2, integral_argument($3, 'n'));
$$;
