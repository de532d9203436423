-- `value`, or the error `message` (condition `condition`) when it is NULL: the one "look it up
-- or say what is missing" step of the lookup functions (heaters_setting, sorting_mode,
-- default_variant, projection_head_by_id, embedding_variant_with_dim). A row counts as found
-- unless all its columns are NULL (every table here has a NOT NULL id).
CREATE OR REPLACE FUNCTION required(value anyelement, message text, condition text)
RETURNS anyelement
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION USING MESSAGE = message, ERRCODE = condition;
    END IF;
    RETURN value;
END;
$$;
