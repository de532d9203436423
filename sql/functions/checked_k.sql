-- The number of results a search function was asked for, or the error all of them give when it
-- is missing or out of range (the HNSW scan's ef_search cannot exceed 1000).
CREATE OR REPLACE FUNCTION checked_k(k integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp
AS $$
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'k must be between 1 and 1000, got %', coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN k;
END;
$$;
