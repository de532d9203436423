-- A database shaped like a live heaters one (the Phoenix app's Ecto migrations), built by the
-- tests that prove heaters-db's migrations leave heaters' own schema and rows alone:
-- serial ids, text states with CHECK constraints (heaters has no enum types), clip_filepath as an
-- object-store key, processing_metadata jsonb, `embedding vector` without a dimension, the
-- generation_strategy_must_be_valid CHECK, a UNIQUE index (heaters uses an index, not a
-- constraint) on (clip_id, model_name, generation_strategy), and tables, columns, triggers and a
-- function heaters-db knows nothing about.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE schema_migrations (
    version bigint PRIMARY KEY,
    inserted_at timestamp(0) without time zone
);

CREATE FUNCTION trigger_set_timestamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$;

CREATE TABLE source_videos (
    id serial PRIMARY KEY,
    title text NOT NULL,
    filepath text,
    ingest_state text NOT NULL DEFAULT 'new',
    duration_seconds double precision,
    fps double precision,
    width integer,
    height integer,
    published_date date,
    web_scraped boolean NOT NULL DEFAULT false,
    last_error text,
    retry_count integer NOT NULL DEFAULT 0,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ingest_state_must_be_valid CHECK (ingest_state IN (
        'new', 'downloading', 'downloaded', 'encoding', 'encoded', 'detect_scenes',
        'virtual_clips_created', 'download_failed', 'encoding_failed'))
);

CREATE TABLE clips (
    id serial PRIMARY KEY,
    source_video_id integer REFERENCES source_videos (id) ON DELETE CASCADE,
    clip_filepath text,
    clip_identifier text NOT NULL,
    start_frame integer,
    end_frame integer,
    start_time_seconds double precision,
    end_time_seconds double precision,
    ingest_state text NOT NULL DEFAULT 'pending_review',
    last_error text,
    retry_count integer NOT NULL DEFAULT 0,
    reviewed_at timestamp(0) without time zone,
    processing_metadata jsonb,
    grouped_with_clip_id integer CONSTRAINT fk_clips_grouped_with_clip_id
        REFERENCES clips (id) ON DELETE SET NULL,
    is_virtual boolean NOT NULL DEFAULT false,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ingest_state_must_be_valid CHECK (ingest_state IN (
        'pending_review', 'review_approved', 'review_skipped', 'review_archived', 'exporting',
        'exported', 'export_failed', 'keyframing', 'keyframed', 'keyframe_failed', 'embedding',
        'embedded', 'embedding_failed', 'archived'))
);
CREATE UNIQUE INDEX clips_clip_filepath_key ON clips (clip_filepath);
CREATE UNIQUE INDEX clips_clip_identifier_key ON clips (clip_identifier);
CREATE INDEX idx_clips_ingest_state ON clips (ingest_state);
CREATE TRIGGER set_timestamp BEFORE UPDATE ON clips
    FOR EACH ROW EXECUTE FUNCTION trigger_set_timestamp();

CREATE TABLE clip_artifacts (
    id serial PRIMARY KEY,
    clip_id integer NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    artifact_type text NOT NULL CONSTRAINT artifact_type_must_be_valid
        CHECK (artifact_type IN ('keyframe')),
    strategy text NOT NULL,
    tag text,
    s3_key text NOT NULL,
    metadata jsonb,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE embeddings (
    id serial PRIMARY KEY,
    clip_id integer NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    embedding vector NOT NULL,
    model_name text NOT NULL,
    model_version text,
    generation_strategy text NOT NULL,
    generated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    embedding_dim integer,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT generation_strategy_must_be_valid CHECK (
        generation_strategy IN ('keyframe_multi_avg', 'keyframe_multi', 'keyframe_single'))
);
CREATE UNIQUE INDEX embeddings_clip_id_model_name_generation_strategy_key
    ON embeddings (clip_id, model_name, generation_strategy);
CREATE INDEX idx_embeddings_lookup ON embeddings (clip_id, model_name, generation_strategy);

INSERT INTO schema_migrations (version, inserted_at) VALUES
    (20250531222733, '2025-06-01 10:00:00'), (20250804212126, '2025-08-05 10:00:00');

INSERT INTO source_videos (title, filepath, ingest_state, duration_seconds, fps, width, height)
VALUES ('Park session', 'source_videos/park.mp4', 'virtual_clips_created', 600.5, 29.97, 1920, 1080),
       ('Street line', 'source_videos/street.mp4', 'encoded', 120, 60, 1280, 720);

INSERT INTO clips (source_video_id, clip_filepath, clip_identifier, start_time_seconds,
                   end_time_seconds, ingest_state, processing_metadata)
VALUES (1, 'clips/park_0001.mp4', 'park_0001', 0, 4.2, 'embedded', '{"trick_time": 2.1}'),
       (1, 'clips/park_0002.mp4', 'park_0002', 4.2, 9.0, 'embedded', '{"keyframes": [5.0, 7.5]}'),
       (1, 'clips/park_0003.mp4', 'park_0003', 9.0, 12.5, 'exported', NULL),
       (2, NULL, 'street_0001', 0, 3.0, 'pending_review', NULL);
UPDATE clips SET grouped_with_clip_id = 1 WHERE id = 2;

INSERT INTO clip_artifacts (clip_id, artifact_type, strategy, tag, s3_key)
VALUES (1, 'keyframe', 'multi', '25pct', 'keyframes/park_0001_25.jpg'),
       (1, 'keyframe', 'multi', '75pct', 'keyframes/park_0001_75.jpg');

-- Keyframe embeddings of two models with different dimensions, side by side in one column.
INSERT INTO embeddings (clip_id, embedding, model_name, model_version, generation_strategy, embedding_dim)
VALUES (1, '[0.1,0.2,0.3,0.4]', 'openai/clip-vit-base-patch32', 'v1', 'keyframe_multi_avg', 4),
       (2, '[0.5,0.1,0.0,-0.2]', 'openai/clip-vit-base-patch32', 'v1', 'keyframe_multi_avg', 4),
       (1, '[1,2,3,4,5,6]', 'google/siglip-base', NULL, 'keyframe_single', 6),
       (2, '[-1,0,1,0,-1,0.5]', 'google/siglip-base', NULL, 'keyframe_multi', 6);
