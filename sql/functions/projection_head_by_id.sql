-- One projection head, or the error every function over a head gives for an unknown id
-- (SQLSTATE no_data_found, which heaters_db.learning.store turns into HeadNotFound).
CREATE OR REPLACE FUNCTION projection_head_by_id(head_id integer) RETURNS projection_heads
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT found.* FROM required((SELECT h FROM projection_heads h WHERE h.id = $1),
        format('unknown projection head %s', coalesce($1::text, 'NULL')), 'no_data_found') found;
$$;
