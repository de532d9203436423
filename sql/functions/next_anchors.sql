-- Public API: which clips to ask a person about next, as anchors of sorting screens.
--   SELECT * FROM next_anchors('trick');        -- one anchor
--   SELECT * FROM next_anchors('spot', 5);
-- No rows while the mode's space holds fewer than two clips: no screen could show a candidate;
-- never an anchor that every other clip is a near-duplicate of (a library of copies of one take),
-- for the same reason.
-- Cold start (fewer than anchor_cold_start_events events of the mode): typical, diverse clips,
-- the medoids of k-means clusters of a sample of the current space, clusters nobody was asked
-- about first (reason cold_start_medoid). Later: from a random pool of anchor_pool_size clips,
-- those asked about least often as anchors of the mode, ties at random (least_asked): the
-- library is covered before a clip comes back. With the setting anchor_ambiguity = 1, the pool
-- clips whose neighbours the current space is unsure about instead: a small top-1/top-2 distance
-- margin (ambiguous_margin) or, with an active head, head and base neighbours that disagree
-- (head_base_disagreement); measured worse (benchmarks/README.md, "Learning curves").
-- About anchor_random_share of the picks are evaluation anchors
-- (reason evaluation): uniform draws among clips nobody trained on, to be shown with
-- evaluation_candidates; the gate judges on those screens. Until the mode's held-out evaluation
-- screens have the gate's minimum of 8 answers with a selection, the picks missing are all
-- evaluation picks (below it no head can go live, and selections are what the gate's power comes
-- from), but no more once 32 evaluation screens were asked (a library where uniform candidates
-- seldom hold a match must still train). A share of 0 turns evaluation picks off, this
-- front-loading included. Informative picks skip anchors held out
-- for the gate (sorting_anchor_splits). Never two near-duplicates (near_duplicate_distance),
-- never a clip used as an anchor in the last anchor_reuse_after_events events of the mode, unless
-- every clip was: then the least recently used come back (least_recently_used). Scores: higher =
-- better pick, comparable within one reason (0 for evaluation and reused picks). The current space
-- is the mode's active head, else the default variant. SELECT setseed(x) first to repeat a call.
-- The work is done by next_anchors_pick (PL/Python, plpython/active_learning.py).
CREATE OR REPLACE FUNCTION next_anchors(mode text DEFAULT 'trick', n integer DEFAULT 1)
RETURNS TABLE (clip_id integer, score double precision, reason text)
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    stored_mode text := sorting_mode(mode);  -- also validates the mode
BEGIN
    IF n IS NULL OR n < 1 OR n > 1000 THEN
        RAISE EXCEPTION 'n must be between 1 and 1000, got %', coalesce(n::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF active_head_id(stored_mode) IS NULL THEN
        PERFORM default_variant();  -- a clear error when there is no space to pick from
    END IF;
    RETURN QUERY SELECT p.clip_id, p.score, p.reason FROM next_anchors_pick(stored_mode, n) p;
END;
$$;

-- n sent as bigint, smallint or numeric (functions/integral_argument.sql). No defaults here: next_anchors() and next_anchors('spot') would
-- match both functions equally and be ambiguous.
CREATE OR REPLACE FUNCTION next_anchors(mode text, n double precision)
RETURNS TABLE (clip_id integer, score double precision, reason text)
LANGUAGE sql VOLATILE
SET search_path = public, pg_temp
AS $$
    SELECT * FROM next_anchors($1, integral_argument($2, 'n'));
$$;
