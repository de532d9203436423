-- Settings the database itself acts on (triggers, SQL functions). Operators change them with
-- UPDATE; each row says what it does.
CREATE TABLE heaters_db_settings (
    name text PRIMARY KEY,
    value text NOT NULL,
    description text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO heaters_db_settings (name, value, description) VALUES
    ('retrain_every', '25', 'New sorting events of a mode, since the last training, that enqueue a train_head job.'),
    ('holdout_percent', '20', 'Share of sorting events (by a hash of the event id) kept out of training for the gate.'),
    ('implicit_negative_weight', '0.3', 'Weight of a shown-but-not-chosen candidate relative to an explicitly rejected one.'),
    ('hnsw_ef_search', '100', 'hnsw.ef_search used by similar_clips (raised to 2*k when k is larger).'),
    ('job_max_attempts', '5', 'Attempts before a job is dead-lettered (status dead).');
