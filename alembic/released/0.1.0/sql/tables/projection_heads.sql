-- One row per trained projection head version (trick2vec, spot2vec). Weights are safetensors
-- bytes (never pickle) with their sha256; apply_head() caches them per session by id + checksum.
-- Lifecycle: training -> candidate (passed the held-out gate, being re-projected) -> active ->
-- retired (kept for rollback); or rejected (stored with its metrics, never served).
CREATE TABLE projection_heads (
    id serial PRIMARY KEY,
    mode text NOT NULL CONSTRAINT projection_heads_mode_is_valid
        CHECK (mode IN ('trick_similarity', 'spot_similarity')),
    version integer NOT NULL,
    base_variant_id integer NOT NULL REFERENCES embedding_variants (id),
    architecture jsonb NOT NULL,
    weights bytea,
    weights_checksum text,
    input_dim integer NOT NULL CHECK (input_dim > 0),
    output_dim integer NOT NULL CHECK (output_dim > 0),
    trained_through_event_id integer NOT NULL DEFAULT 0,
    training_event_count integer NOT NULL DEFAULT 0,
    metrics jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'training' CONSTRAINT projection_heads_status_is_valid
        CHECK (status IN ('training', 'candidate', 'active', 'retired', 'rejected')),
    activated_at timestamptz,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projection_heads_mode_version_key UNIQUE (mode, version),
    CONSTRAINT projection_heads_servable_has_weights
        CHECK (status IN ('training', 'rejected') OR (weights IS NOT NULL AND weights_checksum IS NOT NULL))
);
-- At most one active head per mode.
CREATE UNIQUE INDEX projection_heads_one_active_per_mode ON projection_heads (mode) WHERE status = 'active';
