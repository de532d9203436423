-- One row per choice a person made: the anchor, every candidate shown, the one picked as most
-- similar (NULL: "none similar"), the ones explicitly rejected (hard negatives). Append-only:
-- UPDATE and DELETE are refused (functions/refuse_sorting_event_change.sql), and each INSERT is
-- validated (functions/validate_sorting_event.sql). Clip ids are checked there rather than by
-- foreign keys because array elements cannot carry foreign keys.
CREATE TABLE clip_sorting_events (
    id serial PRIMARY KEY,
    anchor_clip_id integer NOT NULL,
    selected_clip_id integer,
    rejected_clip_ids integer[] NOT NULL DEFAULT '{}',
    candidate_clip_ids integer[] NOT NULL,
    sorting_mode text NOT NULL,
    session_id uuid,
    response_time_ms integer,
    candidate_rankings jsonb,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clip_sorting_events_mode_is_valid
        CHECK (sorting_mode IN ('trick_similarity', 'spot_similarity')),
    CONSTRAINT clip_sorting_events_response_time_not_negative
        CHECK (response_time_ms IS NULL OR response_time_ms >= 0)
);
CREATE INDEX clip_sorting_events_mode_id ON clip_sorting_events (sorting_mode, id);
CREATE INDEX clip_sorting_events_anchor ON clip_sorting_events (anchor_clip_id);
