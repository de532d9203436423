-- Queue health at a glance: counts per kind and status, the oldest runnable job, live leases.
CREATE OR REPLACE VIEW pipeline_queue_status AS
SELECT
    kind,
    status,
    count(*)::integer AS jobs,
    min(inserted_at) AS oldest_inserted_at,
    min(run_after) FILTER (WHERE status = 'queued') AS next_run_after,
    count(*) FILTER (WHERE status = 'running' AND lease_expires_at < now())::integer AS expired_leases,
    array_agg(DISTINCT lease_owner) FILTER (WHERE lease_owner IS NOT NULL) AS workers
FROM pipeline_jobs
GROUP BY kind, status;
