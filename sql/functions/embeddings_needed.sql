-- The (clip, enabled variant) pairs the backfill must embed (`heaters-db embed --missing`,
-- enqueue_embed_jobs(only_missing => true)), for clips with a video: those without a vector yet
-- (a window variant's are in moment_embeddings), and those with one whose latest embed job died
-- after the vector was written. The second kind is a clip whose video changed (clip_filepath
-- updated) and whose re-embed failed: the old vector keeps serving, as nothing is lost, but it
-- was computed from the old file, so the backfill tries again instead of counting it done.
-- embeddings.updated_at is heaters' timestamp(0) in UTC, rounded to the second: a job must have
-- died half a second past it to count as later, so a vector written right after a death
-- (`heaters-db embed --clip`) is never taken for stale.
-- One pass over the embed jobs (DISTINCT ON), not a lookup per pair: pipeline_jobs has no index
-- on clip_id outside pending jobs.
CREATE OR REPLACE FUNCTION embeddings_needed()
RETURNS TABLE (clip_id integer, variant_id integer)
LANGUAGE sql STABLE
SET search_path = public, pg_temp
AS $$
    WITH written AS (
        -- When each pair's vector was last written (a window variant: its latest window).
        SELECT r.clip_id, r.variant_id, max(r.at) AS at
        FROM (
            SELECT e.clip_id, v.id, e.updated_at AT TIME ZONE 'utc'
            FROM embeddings e
            JOIN embedding_variants v
              ON v.model_name = e.model_name AND v.generation_strategy = e.generation_strategy
            UNION ALL
            SELECT m.clip_id, m.variant_id, m.updated_at FROM moment_embeddings m
        ) r (clip_id, variant_id, at)
        GROUP BY r.clip_id, r.variant_id
    ),
    latest_job AS (
        SELECT DISTINCT ON (j.clip_id, j.variant_id)
               j.clip_id, j.variant_id, j.status, coalesce(j.finished_at, j.updated_at) AS at
        FROM pipeline_jobs j
        WHERE j.kind = 'embed'
        ORDER BY j.clip_id, j.variant_id, j.id DESC
    )
    SELECT c.id, v.id
    FROM clips c
    CROSS JOIN embedding_variants v
    LEFT JOIN written w ON w.clip_id = c.id AND w.variant_id = v.id
    LEFT JOIN latest_job l ON l.clip_id = c.id AND l.variant_id = v.id
    WHERE c.clip_filepath IS NOT NULL
      AND v.enabled
      AND (w.at IS NULL OR (l.status = 'dead' AND l.at >= w.at + interval '0.5 seconds'));
$$;
