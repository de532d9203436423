-- What heaters-db's migrations need to remember to undo themselves exactly: which heaters tables
-- they created (and may drop again), the original strategy CHECK constraint, the roles they made.
CREATE TABLE IF NOT EXISTS heaters_db_meta (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now()
);
