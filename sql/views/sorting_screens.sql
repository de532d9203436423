-- One row per sorting event: what was shown, what was chosen, what was rejected, with the fixed
-- anchor-grouped split (sorting_anchor_splits). Training uses it for InfoNCE over each screen
-- (chosen vs the others shown); selected_clip_id NULL means the person said "none similar".
-- evaluation: a screen whose anchor was a uniform draw and whose candidates did not come from the
-- live head (next_anchors reason 'evaluation' + evaluation_candidates): what the gate judges.
CREATE OR REPLACE VIEW sorting_screens AS
SELECT
    e.id AS event_id,
    e.sorting_mode,
    e.anchor_clip_id,
    e.selected_clip_id,
    e.candidate_clip_ids,
    e.rejected_clip_ids,
    ARRAY(
        SELECT x FROM unnest(e.candidate_clip_ids) AS x
        WHERE x IS DISTINCT FROM e.selected_clip_id AND NOT x = ANY (e.rejected_clip_ids)
    ) AS implicit_negative_clip_ids,
    e.session_id,
    e.response_time_ms,
    coalesce(s.split, 'train') AS split,
    e.inserted_at,
    e.anchor_reason,
    e.candidate_sources,
    (e.anchor_reason = 'evaluation') AS evaluation
FROM clip_sorting_events e
LEFT JOIN sorting_anchor_splits s
  ON s.sorting_mode = e.sorting_mode AND s.anchor_clip_id = e.anchor_clip_id;
