-- Jobs that failed at least once and are not done: what an operator reads first.
CREATE OR REPLACE VIEW pipeline_job_errors AS
SELECT
    j.id AS job_id,
    j.kind,
    j.status,
    j.clip_id,
    c.clip_filepath,
    v.model_name,
    v.generation_strategy,
    j.mode,
    j.attempts,
    j.max_attempts,
    j.run_after,
    j.last_error,
    j.last_traceback,
    j.updated_at
FROM pipeline_jobs j
LEFT JOIN clips c ON c.id = j.clip_id
LEFT JOIN embedding_variants v ON v.id = j.variant_id
WHERE j.last_error IS NOT NULL AND j.status <> 'done'
ORDER BY j.updated_at DESC;
