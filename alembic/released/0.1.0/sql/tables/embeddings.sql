-- heaters' embeddings table, created only on an empty database. `embedding` has no fixed
-- dimension (heaters stores several models side by side), so HNSW indexes are partial expression
-- indexes per variant (functions/ensure_variant_index.sql). The strategy CHECK starts with
-- heaters' own values; migration 0002 extends it.
CREATE TABLE embeddings (
    id serial PRIMARY KEY,
    clip_id integer NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    embedding vector NOT NULL,
    model_name text NOT NULL,
    model_version text,
    generation_strategy text NOT NULL
        CONSTRAINT generation_strategy_must_be_valid
        CHECK (generation_strategy IN ('keyframe_multi_avg', 'keyframe_multi', 'keyframe_single')),
    embedding_dim integer,
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    CONSTRAINT embeddings_clip_id_model_name_generation_strategy_index
        UNIQUE (clip_id, model_name, generation_strategy)
);
