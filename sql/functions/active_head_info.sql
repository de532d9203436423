-- What the sorting page shows of a mode's active projection head (no row: none is active).
-- SECURITY DEFINER: heaters_sorter sees the head's version and metrics, never its weights.
CREATE OR REPLACE FUNCTION active_head_info(mode text)
RETURNS TABLE (id integer, version integer, metrics jsonb, activated_at timestamp with time zone,
               training_event_count integer)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT h.id, h.version, h.metrics, h.activated_at, h.training_event_count
    FROM projection_heads h
    WHERE h.mode = sorting_mode($1) AND h.status = 'active';
$$;
