-- What is wrong with `value` for a setting with a rule (value_kind, minimum, maximum: revision
-- 0024), as a sentence ("must be an integer from 0 to 100, got 'abc'"), or NULL when its readers
-- can use it (and for a setting without a rule).
-- 'integer': digits only (what ::integer and Python's int() both read), within int4;
-- 'number': a finite decimal (no NaN or Infinity, which numeric and float() would accept).
-- Used by the trigger that refuses such values (check_setting_value) and by `heaters-db
-- migrate`, which names the values an older version let in.
CREATE OR REPLACE FUNCTION setting_value_problem(
    value text, value_kind text, minimum numeric, maximum numeric)
RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp
AS $$
DECLARE
    number numeric;
    pattern text;
BEGIN
    IF value_kind IS NULL THEN
        RETURN NULL;
    END IF;
    pattern := CASE value_kind WHEN 'integer' THEN '^\s*[+-]?[0-9]{1,10}\s*$'
               ELSE '^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?\s*$' END;
    IF value ~ pattern THEN
        number := value::numeric;
    END IF;
    IF number IS NULL
       OR (value_kind = 'integer' AND abs(number) > 2147483647)
       OR number < minimum OR number > maximum THEN
        RETURN 'must be ' || CASE value_kind WHEN 'integer' THEN 'an integer' ELSE 'a number' END
            || CASE WHEN minimum IS NOT NULL AND maximum IS NOT NULL
                         THEN format(' from %s to %s', minimum, maximum)
                    WHEN minimum IS NOT NULL THEN format(' of at least %s', minimum)
                    WHEN maximum IS NOT NULL THEN format(' of at most %s', maximum)
                    ELSE '' END
            || ', got ' || coalesce(quote_literal(value), 'NULL');
    END IF;
    RETURN NULL;
END;
$$;
