-- One projection head, or the error every index and search function over a head gives for an
-- unknown id (head_index_definition, ensure_moment_head_index, nearest_in_head).
CREATE OR REPLACE FUNCTION projection_head_by_id(head_id integer)
RETURNS projection_heads
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads;
BEGIN
    SELECT * INTO h FROM projection_heads p WHERE p.id = head_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown projection head %', head_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN h;
END;
$$;
