-- Named queries of `heaters-db demo` (heaters_db/demo/run.py).

-- name: disable_other_variants
-- The demo's model becomes the one enabled, default variant (the ViT-L default would take
-- minutes per clip on a CPU).
UPDATE embedding_variants SET is_default = false, enabled = false, updated_at = now()
WHERE NOT (model_name = %(model_name)s AND generation_strategy = %(strategy)s);

-- name: use_variant
INSERT INTO embedding_variants (model_name, generation_strategy, num_frames, is_default, enabled)
VALUES (%(model_name)s, %(strategy)s, %(frames)s, true, true)
ON CONFLICT (model_name, generation_strategy)
DO UPDATE SET num_frames = EXCLUDED.num_frames, is_default = true, enabled = true, updated_at = now();

-- name: demo_settings
-- Train after every round. The random-weight model packs the clips of one scene within ~0.003
-- cosine distance of each other, so the near-duplicate threshold must be finer than that; and a
-- library of a few dozen clips must reuse anchors sooner than a real one. Heads for a 96-d
-- model can be small (and train in seconds on a CPU). Evaluation screens keep their default share
-- (15 percent; next_anchors front-loads the gate's first 8): each evaluation anchor is held out
-- for good, and a library of 36 clips that gave a quarter of its screens to them was left with
-- too few anchors to train on (served recall 0.53-0.66 after four rounds, against 0.77-0.93).
UPDATE heaters_db_settings
SET value = CASE name
        WHEN 'retrain_every' THEN %(retrain_every)s::text
        WHEN 'near_duplicate_distance' THEN '0.0002'
        WHEN 'anchor_reuse_after_events' THEN '12'
        WHEN 'head_output_dim' THEN '32'
        WHEN 'head_hidden_dim' THEN '128'
    END,
    updated_at = now()
WHERE name IN ('retrain_every', 'near_duplicate_distance', 'anchor_reuse_after_events',
               'head_output_dim', 'head_hidden_dim');

-- name: insert_clip
INSERT INTO clips (clip_identifier, clip_filepath, ingest_state, processing_metadata)
VALUES (%(identifier)s, %(path)s, 'exported', %(metadata)s::jsonb)
RETURNING id;

-- name: embed_progress
SELECT count(*) FILTER (WHERE status IN ('done', 'skipped', 'dead')) AS finished,
       count(*) FILTER (WHERE status = 'dead') AS dead
FROM pipeline_jobs WHERE kind = 'embed';

-- name: embed_failures
SELECT clip_id, status, last_error FROM pipeline_jobs
WHERE kind = 'embed' AND status IN ('skipped', 'dead') ORDER BY clip_id;

-- name: similar_clips
SELECT clip_id, distance, rank FROM similar_clips(%(clip_id)s, %(mode)s, %(k)s);

-- name: next_anchor
SELECT clip_id, score, reason FROM next_anchors(%(mode)s, 1);

-- name: sorting_candidates
SELECT clip_id, position, source, distance FROM sorting_candidates(%(anchor)s, %(mode)s, %(n)s)
ORDER BY position;

-- name: evaluation_candidates
SELECT clip_id, position, source, distance FROM evaluation_candidates(%(anchor)s, %(mode)s, %(n)s)
ORDER BY position;

-- name: insert_event
INSERT INTO clip_sorting_events
    (anchor_clip_id, selected_clip_id, rejected_clip_ids, candidate_clip_ids, sorting_mode,
     session_id, response_time_ms, candidate_rankings, anchor_reason, candidate_sources)
VALUES (%(anchor)s, %(selected)s, %(rejected)s, %(candidates)s, %(mode)s,
        '00000000-0000-4000-8000-00000000de70', %(response_time_ms)s, %(rankings)s::jsonb,
        %(anchor_reason)s, %(sources)s::text[]);

-- name: pending_reprojections
SELECT count(*) AS pending FROM pipeline_jobs
WHERE kind = 'reproject' AND status IN ('queued', 'running');

-- name: latest_train_job
SELECT id, status, last_error, result FROM pipeline_jobs
WHERE kind = 'train_head' AND mode = %(mode)s ORDER BY id DESC LIMIT 1;

-- name: newest_head
SELECT id, version, status, metrics FROM projection_heads
WHERE mode = %(mode)s ORDER BY version DESC LIMIT 1;

-- name: active_head
SELECT id, version FROM projection_heads WHERE mode = %(mode)s AND status = 'active';
