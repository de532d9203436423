-- heaters' clips table, created only on an empty database. clip_filepath is what heaters exports:
-- an object-store key (clips/<name>.mp4), an s3:// URL or a local path; NULL until exported.
CREATE TABLE clips (
    id serial PRIMARY KEY,
    source_video_id integer REFERENCES source_videos (id) ON DELETE CASCADE,
    clip_filepath text UNIQUE,
    clip_identifier text NOT NULL,
    start_frame integer,
    end_frame integer,
    start_time_seconds double precision,
    end_time_seconds double precision,
    ingest_state text NOT NULL DEFAULT 'new'
        CONSTRAINT ingest_state_must_be_valid CHECK (ingest_state IN (
            'new', 'pending_review', 'review_approved', 'review_archived', 'exported',
            'embedding', 'embedded', 'embedding_failed', 'archived')),
    processing_metadata jsonb,
    last_error text,
    retry_count integer NOT NULL DEFAULT 0,
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX clips_source_video_id_index ON clips (source_video_id);
