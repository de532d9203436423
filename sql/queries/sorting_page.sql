-- Runtime queries of the sorting page (heaters_db/web/store.py, `heaters-db sort`).
-- Which anchor to ask about and what to show beside it are decided in SQL (next_anchors,
-- sorting_candidates); the page only shows them and records one event per choice.

-- name: next_anchors
SELECT clip_id, score, reason FROM next_anchors(%(mode)s, %(n)s);

-- name: sorting_candidates
SELECT clip_id, position, source, distance
FROM sorting_candidates(%(anchor)s, %(mode)s, %(n)s)
ORDER BY position;

-- The page's reads all go through SECURITY DEFINER functions, so it runs as heaters_sorter alone.

-- name: clip_files
SELECT id, clip_filepath, clip_identifier FROM sorting_clip_files(%(clip_ids)s::integer[]);

-- name: active_head
-- The active projection head of a mode, or no row (similarity then uses the default variant).
SELECT id, version, metrics, activated_at, training_event_count FROM active_head_info(%(mode)s);

-- name: evaluation_candidates
-- An evaluation screen (next_anchors reason 'evaluation'): candidates drawn without the live head.
SELECT clip_id, position, source, distance
FROM evaluation_candidates(%(anchor)s, %(mode)s, %(n)s)
ORDER BY position;

-- name: insert_sorting_event
-- One choice, one row. The BEFORE INSERT trigger (functions/validate_sorting_event.sql) refuses
-- impossible events with a message the page shows to the person.
INSERT INTO clip_sorting_events (
    anchor_clip_id, selected_clip_id, rejected_clip_ids, candidate_clip_ids, sorting_mode,
    session_id, response_time_ms, candidate_rankings, anchor_reason, candidate_sources
) VALUES (
    %(anchor)s, %(selected)s, %(rejected)s::integer[], %(candidates)s::integer[],
    sorting_mode(%(mode)s), %(session_id)s::uuid, %(response_time_ms)s, %(candidate_rankings)s::jsonb,
    %(anchor_reason)s, %(candidate_sources)s::text[]
)
RETURNING id;
