-- The error of clip_base_embedding and moment_query_embedding when a clip has no vector of a
-- variant yet: "clip N has no <what> yet (embed job: <state>)", with the latest embed job's status
-- (and last error) or, without one, how to make one, so the caller knows whether to wait or to
-- look at an error. A clip without a video (clip_filepath NULL) is told so: there is nothing to
-- embed until heaters sets its file, and `embed --missing` would queue nothing.
CREATE OR REPLACE FUNCTION raise_not_embedded(job_clip_id integer, job_variant_id integer, what text)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    job text := (SELECT j.status || coalesce(': ' || j.last_error, '') FROM pipeline_jobs j
                 WHERE j.kind = 'embed' AND j.clip_id = job_clip_id AND j.variant_id = job_variant_id
                 ORDER BY j.id DESC LIMIT 1);
BEGIN
    IF EXISTS (SELECT 1 FROM clips c WHERE c.id = job_clip_id AND c.clip_filepath IS NULL) THEN
        RAISE EXCEPTION 'clip % has no % yet: it has no video (clip_filepath is NULL), nothing to embed',
            job_clip_id, what
            USING ERRCODE = 'no_data_found';
    END IF;
    -- A job that is done (or skipped) while the vector is missing: the row was deleted since.
    RAISE EXCEPTION 'clip % has no % yet (embed job: %)', job_clip_id, what,
        coalesce(job, 'none; run heaters-db embed --missing')
        || CASE WHEN job LIKE 'done%' OR job LIKE 'skipped%'
                THEN '; its vector is gone since: run heaters-db embed --missing' ELSE '' END
        USING ERRCODE = 'no_data_found';
END;
$$;
