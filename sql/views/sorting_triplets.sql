-- (anchor, positive, negative) triplets from sorting events. Explicitly rejected candidates are
-- hard negatives (weight 1); the other shown-but-not-chosen candidates are implicit negatives with
-- a lower weight (setting implicit_negative_weight). A "none similar" event gives negatives with
-- positive_clip_id NULL: the anchor should be far from every candidate it was shown. split and
-- evaluation are the screen's (sorting_screens).
CREATE OR REPLACE VIEW sorting_triplets AS
SELECT
    s.event_id,
    s.sorting_mode,
    s.anchor_clip_id,
    s.selected_clip_id AS positive_clip_id,
    negative.clip_id AS negative_clip_id,
    CASE WHEN negative.clip_id = ANY (s.rejected_clip_ids) THEN 'hard' ELSE 'implicit' END AS kind,
    CASE WHEN negative.clip_id = ANY (s.rejected_clip_ids) THEN 1.0::double precision
         ELSE heaters_setting('implicit_negative_weight')::double precision END AS weight,
    s.split,
    s.evaluation
FROM sorting_screens s
CROSS JOIN LATERAL unnest(s.candidate_clip_ids) AS negative (clip_id)
WHERE negative.clip_id IS DISTINCT FROM s.selected_clip_id;
