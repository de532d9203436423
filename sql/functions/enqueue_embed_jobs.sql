-- Enqueue one embed job per (clip, enabled variant) for clips that have a video, skipping work
-- already pending; NOTIFY once if anything was added. Returns the number of new jobs.
-- clip_ids NULL: every clip. only_missing: only the pairs embeddings_needed() returns (no vector
-- yet, or one whose re-embed died since: the backfill). variant_ids: only these variants (NULL: every enabled one).
-- The ids are numeric[] so that integer[], bigint[] (numpy, JDBC) and numeric[] arrays and
-- untyped literals ('{1,2}', NULL) all fit one function; overloads per array type would make
-- the untyped ones ambiguous. They are checked and turned into integer[] first.
CREATE OR REPLACE FUNCTION enqueue_embed_jobs(clip_ids numeric[], only_missing boolean DEFAULT false,
                                              variant_ids numeric[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    added integer;
    wanted_clips integer[] := integral_array(clip_ids, 'clip_ids');
    wanted_variants integer[] := integral_array(variant_ids, 'variant_ids');
BEGIN
    INSERT INTO pipeline_jobs (kind, clip_id, variant_id, max_attempts)
    SELECT 'embed', c.id, v.id, heaters_setting('job_max_attempts')::integer
    FROM clips c
    CROSS JOIN embedding_variants v
    WHERE (wanted_clips IS NULL OR c.id = ANY (wanted_clips))
      AND c.clip_filepath IS NOT NULL
      AND v.enabled
      AND (wanted_variants IS NULL OR v.id = ANY (wanted_variants))
      -- Not correlated: evaluated once and hashed.
      AND (NOT only_missing
           OR (c.id, v.id) IN (SELECT n.clip_id, n.variant_id FROM embeddings_needed() n))
    ORDER BY c.id, v.id
    ON CONFLICT (clip_id, variant_id) WHERE kind = 'embed' AND status IN ('queued', 'running')
    DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF added > 0 THEN
        PERFORM pg_notify('heaters_db_jobs', json_build_object('kind', 'embed', 'count', added)::text);
    END IF;
    RETURN added;
END;
$$;
