-- One row per sorting event: what was shown, what was chosen, what was rejected, with the
-- deterministic split. Training uses it for InfoNCE over each screen (chosen vs the others shown);
-- selected_clip_id NULL means the person said "none similar".
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
    sorting_event_split(e.id) AS split,
    e.inserted_at
FROM clip_sorting_events e;
