-- heaters' source_videos table, created only on an empty database (heaters owns it otherwise).
-- Shaped like heaters' Ecto schema: serial id, text states, naive UTC timestamps.
CREATE TABLE source_videos (
    id serial PRIMARY KEY,
    title text,
    filepath text,
    ingest_state text NOT NULL DEFAULT 'new',
    duration_seconds double precision,
    fps double precision,
    width integer,
    height integer,
    last_error text,
    retry_count integer NOT NULL DEFAULT 0,
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
