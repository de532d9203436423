-- The id of the active projection head of a mode ('trick', 'spot', ...), NULL when none.
CREATE OR REPLACE FUNCTION active_head_id(mode text)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = public, pg_temp
AS $$
    SELECT h.id FROM projection_heads h WHERE h.mode = sorting_mode($1) AND h.status = 'active';
$$;
