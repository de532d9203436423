-- The durable job queue. The table is the truth; NOTIFY heaters_db_jobs is only a wake-up.
-- A job is claimed with FOR UPDATE SKIP LOCKED (functions/claim_jobs.sql) and leased: if its
-- daemon dies, the lease expires and another daemon takes it (requeue_expired_jobs.sql).
CREATE TABLE pipeline_jobs (
    id serial PRIMARY KEY,
    kind text NOT NULL CONSTRAINT pipeline_jobs_kind_is_valid
        CHECK (kind IN ('embed', 'train_head', 'reproject')),
    clip_id integer REFERENCES clips (id) ON DELETE CASCADE,
    variant_id integer REFERENCES embedding_variants (id) ON DELETE CASCADE,
    mode text CONSTRAINT pipeline_jobs_mode_is_valid
        CHECK (mode IN ('trick_similarity', 'spot_similarity')),
    projection_head_id integer,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'queued' CONSTRAINT pipeline_jobs_status_is_valid
        CHECK (status IN ('queued', 'running', 'done', 'skipped', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5,
    run_after timestamptz NOT NULL DEFAULT now(),
    lease_owner text,
    lease_expires_at timestamptz,
    last_error text,
    last_traceback text,
    result jsonb,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT pipeline_jobs_embed_has_target
        CHECK (kind <> 'embed' OR (clip_id IS NOT NULL AND variant_id IS NOT NULL)),
    CONSTRAINT pipeline_jobs_train_has_mode CHECK (kind <> 'train_head' OR mode IS NOT NULL),
    CONSTRAINT pipeline_jobs_reproject_has_head
        CHECK (kind <> 'reproject' OR projection_head_id IS NOT NULL)
);

-- One pending embed per (clip, variant) and one pending training per mode: enqueueing the same
-- work twice is a no-op (INSERT ... ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX pipeline_jobs_pending_embed ON pipeline_jobs (clip_id, variant_id)
    WHERE kind = 'embed' AND status IN ('queued', 'running');
CREATE UNIQUE INDEX pipeline_jobs_pending_train ON pipeline_jobs (mode)
    WHERE kind = 'train_head' AND status IN ('queued', 'running');
CREATE UNIQUE INDEX pipeline_jobs_pending_reproject ON pipeline_jobs (projection_head_id)
    WHERE kind = 'reproject' AND status IN ('queued', 'running');
-- What claim_jobs scans: runnable jobs in order.
CREATE INDEX pipeline_jobs_runnable ON pipeline_jobs (run_after, id) WHERE status = 'queued';
CREATE INDEX pipeline_jobs_leases ON pipeline_jobs (lease_expires_at) WHERE status = 'running';
