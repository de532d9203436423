-- The split of a sorting event: its anchor's, fixed at the anchor's first event in the mode
-- (functions/assign_anchor_split.sql). 'train' | 'validation' | 'holdout'.
CREATE OR REPLACE FUNCTION sorting_event_split(event_id integer)
RETURNS text
LANGUAGE sql STABLE
SET search_path = public, pg_temp
AS $$
    SELECT s.split
    FROM clip_sorting_events e
    JOIN sorting_anchor_splits s
      ON s.sorting_mode = e.sorting_mode AND s.anchor_clip_id = e.anchor_clip_id
    WHERE e.id = event_id;
$$;
