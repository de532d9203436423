-- Normalises a user-facing mode ('trick', 'spot', or the stored names) to the stored name.
CREATE OR REPLACE FUNCTION sorting_mode(mode text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp
AS $$
BEGIN
    CASE lower(trim(mode))
        WHEN 'trick', 'trick_similarity' THEN RETURN 'trick_similarity';
        WHEN 'spot', 'spot_similarity' THEN RETURN 'spot_similarity';
        ELSE
            RAISE EXCEPTION 'unknown mode %: use trick or spot (or trick_similarity / spot_similarity)',
                coalesce(quote_literal(mode), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
