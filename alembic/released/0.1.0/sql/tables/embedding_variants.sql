-- Which embeddings the database wants: one row per (model, strategy). Every enabled variant is
-- computed for every clip that gets a video; the default one serves similar_clips before a
-- projection head exists. `dim` is filled by the first embedding when not known in advance.
CREATE TABLE embedding_variants (
    id serial PRIMARY KEY,
    model_name text NOT NULL,
    generation_strategy text NOT NULL
        CONSTRAINT embedding_variants_strategy_is_video
        CHECK (generation_strategy IN ('video_full_clip', 'video_centered_64', 'video_trick_window')),
    num_frames integer NOT NULL DEFAULT 64 CHECK (num_frames > 0 AND num_frames % 2 = 0),
    dim integer CHECK (dim > 0),
    is_default boolean NOT NULL DEFAULT false,
    enabled boolean NOT NULL DEFAULT true,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT embedding_variants_model_strategy_key UNIQUE (model_name, generation_strategy)
);
-- At most one default variant.
CREATE UNIQUE INDEX embedding_variants_one_default ON embedding_variants (is_default) WHERE is_default;

INSERT INTO embedding_variants (model_name, generation_strategy, num_frames, dim, is_default)
VALUES ('facebook/vjepa2-vitl-fpc64-256', 'video_full_clip', 64, 1024, true);
