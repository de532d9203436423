-- integral_argument for an array of ids (enqueue_embed_jobs): integer[] back, or a refusal that
-- names the first few offending values and how many there are.
CREATE OR REPLACE FUNCTION integral_array(value numeric[], name text)
RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = public, pg_temp
AS $$
DECLARE
    bad numeric[];
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    bad := ARRAY(
        SELECT x FROM unnest(value) x
        WHERE x = 'NaN'::numeric OR x <> trunc(x) OR x < -2147483648 OR x > 2147483647);
    IF cardinality(bad) > 0 THEN
        RAISE EXCEPTION '% must hold whole numbers in integer range, got % (% in all)',
            name, array_to_string(bad[1:5], ', ') || CASE WHEN cardinality(bad) > 5 THEN ', ...' ELSE '' END,
            cardinality(bad) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN value::integer[];
END;
$$;
