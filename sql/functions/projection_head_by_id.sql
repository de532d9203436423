-- One projection head, or the error every index and search function over a head gives for an
-- unknown id (head_index_definition, ensure_moment_head_index, nearest_in_head).
CREATE OR REPLACE FUNCTION projection_head_by_id(head_id integer) RETURNS projection_heads
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT found.* FROM required((SELECT h FROM projection_heads h WHERE h.id = $1),
        format('unknown projection head %s', $1), 'no_data_found') found;
$$;
