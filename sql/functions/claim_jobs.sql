-- Claim up to max_jobs runnable jobs of the given kinds for one worker, leased for lease_seconds.
-- FOR UPDATE SKIP LOCKED lets any number of daemons on any number of hosts claim concurrently
-- without ever handing the same job to two of them. Expired leases are requeued first, so a job
-- whose daemon was killed is picked up here.
--
-- Whole clips: each picked embed job brings along its clip's other runnable queued embed jobs
-- (its other variants), so the worker decodes the clip once for all of them (a full-clip and a
-- window variant share one decode pass, heaters_db/moments.py) even with max_jobs = 1. The
-- result can therefore hold more than max_jobs rows: max_jobs counts the jobs picked in queue
-- order, at most one more per other enabled variant of their clips. Fairness is unchanged (jobs
-- are picked oldest first; a sibling only moves up to join its clip), and so are retries: a
-- sibling waiting out a backoff (run_after in the future) stays queued. A sibling that another
-- worker has locked at this instant is skipped, not waited for: that worker takes it and decodes
-- the clip for it itself (correct, one extra decode).
CREATE OR REPLACE FUNCTION claim_jobs(worker text, kinds text[], max_jobs integer, lease_seconds integer)
RETURNS SETOF pipeline_jobs
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM requeue_expired_jobs();
    RETURN QUERY
    WITH picked AS MATERIALIZED (  -- evaluated once: LIMIT with SKIP LOCKED is not repeatable
        SELECT j.id, j.kind, j.clip_id FROM pipeline_jobs j
        WHERE j.status = 'queued' AND j.run_after <= now() AND j.kind = ANY (kinds)
        ORDER BY j.run_after, j.id
        LIMIT max_jobs
        FOR UPDATE SKIP LOCKED
    ),
    clip_siblings AS (
        SELECT s.id FROM pipeline_jobs s
        WHERE s.status = 'queued' AND s.run_after <= now() AND s.kind = 'embed'
          AND s.clip_id IN (SELECT p.clip_id FROM picked p WHERE p.kind = 'embed')
          AND s.id NOT IN (SELECT p.id FROM picked p)
        FOR UPDATE SKIP LOCKED
    ),
    claimed AS (
        SELECT p.id FROM picked p
        UNION
        SELECT s.id FROM clip_siblings s
    )
    UPDATE pipeline_jobs j
    SET status = 'running',
        attempts = j.attempts + 1,
        lease_owner = worker,
        lease_expires_at = now() + make_interval(secs => lease_seconds),
        started_at = now(),
        updated_at = now()
    FROM claimed
    WHERE j.id = claimed.id
    RETURNING j.*;
END;
$$;
