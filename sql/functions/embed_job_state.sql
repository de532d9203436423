-- What the latest embed job of a clip for a variant says, for the "not embedded yet" errors of
-- clip_base_embedding and moment_query_embedding: its status (and last error), or that there is
-- none and how to make one. So the caller knows whether to wait or to look at an error.
CREATE OR REPLACE FUNCTION embed_job_state(job_clip_id integer, job_variant_id integer)
RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT coalesce(
        (SELECT j.status || coalesce(': ' || j.last_error, '') FROM pipeline_jobs j
         WHERE j.kind = 'embed' AND j.clip_id = $1 AND j.variant_id = $2
         ORDER BY j.id DESC LIMIT 1),
        'none; run heaters-db embed --missing');
$$;
