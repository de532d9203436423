-- The projection_heads row of an id, or the error every head function raises for an unknown one
-- (SQLSTATE no_data_found, which heaters_db.learning.store turns into HeadNotFound).
CREATE OR REPLACE FUNCTION projection_head(head_id integer)
RETURNS projection_heads
LANGUAGE plpgsql STABLE
SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads;
BEGIN
    SELECT * INTO h FROM projection_heads p WHERE p.id = head_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown projection head %', coalesce(head_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN h;
END;
$$;
