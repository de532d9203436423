-- Ids and counts as clients send them: psycopg sends numpy/pandas integers as bigint (so does
-- JDBC's setLong) and small Python ints as smallint; a typed 5.0 arrives as numeric. The public
-- functions' double precision overloads take all of these (each casts implicitly to it) and
-- pass them through here to their integer function: a whole number in integer range comes back
-- as integer, anything else is refused by name. double precision, not numeric or bigint: it is
-- the preferred numeric type, so a smallint argument picks the overload instead of being
-- ambiguous between two equally good ones; every integer id is exact in it. An integer literal
-- still picks the integer function itself (an exact match wins).
CREATE OR REPLACE FUNCTION integral_argument(value double precision, name text)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE
SET search_path = public, pg_temp
AS $$
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    IF value = 'NaN'::double precision OR value <> trunc(value) THEN
        RAISE EXCEPTION '% must be a whole number, got %', name, value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF value < -2147483648 OR value > 2147483647 THEN
        RAISE EXCEPTION '% is out of range for an integer: %', name, value
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    RETURN value::integer;
END;
$$;
