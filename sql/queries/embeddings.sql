-- Runtime queries of the embed path (heaters_db/daemon.py, heaters_db/embed_jobs.py) and of the
-- `heaters-db embed` / `variant` commands.

-- name: embed_job_targets
-- What an embed job needs to run: its clip's file and metadata and its variant. Jobs whose clip
-- or variant disappeared (ON DELETE CASCADE) simply do not come back.
SELECT j.id AS job_id, c.id AS clip_id, c.clip_filepath, c.processing_metadata,
       c.start_time_seconds, c.end_time_seconds,
       v.id AS variant_id, v.model_name, v.generation_strategy, v.num_frames, v.dim,
       v.enabled, v.window_seconds, v.window_stride_seconds
FROM pipeline_jobs j
JOIN clips c ON c.id = j.clip_id
JOIN embedding_variants v ON v.id = j.variant_id
WHERE j.id = ANY (%(job_ids)s::integer[]);

-- name: clip_targets
-- `heaters-db embed --clip ID`: the clip with every variant to compute now (the enabled ones,
-- or those named).
SELECT NULL::integer AS job_id, c.id AS clip_id, c.clip_filepath, c.processing_metadata,
       c.start_time_seconds, c.end_time_seconds,
       v.id AS variant_id, v.model_name, v.generation_strategy, v.num_frames, v.dim,
       v.enabled, v.window_seconds, v.window_stride_seconds
FROM clips c
CROSS JOIN embedding_variants v
WHERE c.id = %(clip_id)s
  AND (CASE WHEN %(variant_ids)s::integer[] IS NULL THEN v.enabled
            ELSE v.id = ANY (%(variant_ids)s::integer[]) END)
ORDER BY v.id;

-- name: clip_exists
SELECT id, clip_filepath FROM clips WHERE id = %(clip_id)s;

-- name: upsert_embedding
-- Idempotent: a job that runs twice (lease expired, retried) rewrites the same row.
INSERT INTO embeddings (clip_id, embedding, model_name, model_version, generation_strategy,
                        embedding_dim)
VALUES (%(clip_id)s, %(embedding)s, %(model_name)s, %(model_version)s, %(generation_strategy)s,
        %(embedding_dim)s)
ON CONFLICT (clip_id, model_name, generation_strategy) DO UPDATE
SET embedding = EXCLUDED.embedding,
    model_version = EXCLUDED.model_version,
    embedding_dim = EXCLUDED.embedding_dim,
    updated_at = (now() AT TIME ZONE 'utc')
RETURNING id;

-- name: claim_variant_dim
-- Record the model's dimension on a variant that has none yet; returns the dimension the variant
-- now has, which differs from the model's when the variant was declared with another one. A
-- variant with a dim is only read: no row rewrite per daemon start, and no CHECK re-run on a row
-- stored before a constraint (NOT VALID) was added.
WITH claimed AS (
    UPDATE embedding_variants SET dim = %(dim)s, updated_at = now()
    WHERE id = %(variant_id)s AND dim IS NULL
    RETURNING dim
)
SELECT dim FROM claimed
UNION ALL
SELECT dim FROM embedding_variants WHERE id = %(variant_id)s AND dim IS NOT NULL;

-- name: ensure_variant_index
SELECT ensure_variant_index(%(variant_id)s) AS index_name;

-- name: clips_missing_embeddings
-- Clips with a video that some enabled variant still needs (functions/embeddings_needed.sql:
-- no vector yet, or one whose re-embed after a new video died): the backfill.
SELECT DISTINCT clip_id AS id FROM embeddings_needed() ORDER BY id;

-- name: enqueue_embed_jobs
SELECT enqueue_embed_jobs(%(clip_ids)s::integer[], only_missing => %(only_missing)s) AS added;

-- name: enqueue_variant_backfill
-- `variant add`: one embed job per clip with a video that lacks THIS variant (not other
-- variants' gaps, e.g. clips the trick window skipped).
SELECT enqueue_embed_jobs(NULL, only_missing => true, variant_ids => ARRAY[%(variant_id)s]::integer[]) AS added;

-- name: enqueue_variant_reembed
-- `variant add --reembed`: one embed job per clip with a video, whether it has a vector of THIS
-- variant or not (its frame count or windows changed; each old vector serves until replaced).
SELECT enqueue_embed_jobs(NULL, only_missing => false, variant_ids => ARRAY[%(variant_id)s]::integer[]) AS added;

-- name: variant_vector_count
-- Vectors stored under a variant (a window variant's in moment_embeddings).
SELECT (SELECT count(*) FROM embeddings e
        WHERE e.model_name = v.model_name AND e.generation_strategy = v.generation_strategy)
       + (SELECT count(*) FROM moment_embeddings m WHERE m.variant_id = v.id) AS vectors
FROM embedding_variants v
WHERE v.id = %(variant_id)s;

-- name: heads_on_variant
-- `variant disable`: the heads that serve, or may go live, on a variant's vectors.
SELECT id, mode, version, status FROM projection_heads
WHERE base_variant_id = %(variant_id)s AND status IN ('active', 'candidate')
ORDER BY mode, version;

-- name: variant_list
SELECT v.id, v.model_name, v.generation_strategy, v.num_frames, v.dim, v.is_default, v.enabled,
       (SELECT count(*) FROM embeddings e
        WHERE e.model_name = v.model_name AND e.generation_strategy = v.generation_strategy)
           + (SELECT count(*) FROM moment_embeddings m WHERE m.variant_id = v.id)
           AS embeddings,
       v.window_seconds, v.window_stride_seconds,
       (SELECT count(*) FROM pipeline_jobs j
        WHERE j.variant_id = v.id AND j.status IN ('queued', 'running')) AS pending_jobs
FROM embedding_variants v
ORDER BY v.id;

-- name: variant_by_id
SELECT id FROM embedding_variants WHERE id = %(variant_id)s;

-- name: variant_by_name
SELECT id, model_name, generation_strategy, num_frames, dim, is_default, enabled, window_seconds,
       window_stride_seconds
FROM embedding_variants
WHERE model_name = %(model_name)s AND generation_strategy = %(generation_strategy)s;

-- name: variant_upsert
-- `variant add`: a new variant, or an existing one enabled again (its frame count updated when
-- given). Returns the row and whether it was new.
-- Window variants (video_moment_windows) also take their window length and stride.
INSERT INTO embedding_variants (model_name, generation_strategy, num_frames, window_seconds,
                                window_stride_seconds)
VALUES (%(model_name)s, %(generation_strategy)s, coalesce(%(num_frames)s::integer, 64),
        %(window_seconds)s::double precision, %(window_stride_seconds)s::double precision)
ON CONFLICT (model_name, generation_strategy) DO UPDATE
SET enabled = true,
    num_frames = coalesce(%(num_frames)s::integer, embedding_variants.num_frames),
    window_seconds = coalesce(%(window_seconds)s::double precision, embedding_variants.window_seconds),
    window_stride_seconds = coalesce(%(window_stride_seconds)s::double precision,
                                     embedding_variants.window_stride_seconds),
    updated_at = now()
RETURNING id, model_name, generation_strategy, num_frames, dim, is_default, enabled,
          window_seconds, window_stride_seconds, (xmax = 0) AS inserted;

-- name: variant_clear_default
-- Two statements (clear, then set) because the one-default unique index is checked per row.
UPDATE embedding_variants SET is_default = false, updated_at = now()
WHERE is_default AND id <> %(variant_id)s;

-- name: variant_set_default
UPDATE embedding_variants SET is_default = true, updated_at = now() WHERE id = %(variant_id)s;

-- name: variant_disable
UPDATE embedding_variants SET enabled = false, updated_at = now()
WHERE id = %(variant_id)s;
