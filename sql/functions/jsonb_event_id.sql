-- An event id kept in a job's payload or result (jsonb), or NULL when the value is no such id
-- (missing, not a number, out of integer range). The retrain watermark reads these from every
-- finished train_head job: a hand-edited or garbled one must not make the cast fail inside
-- the sorting events' INSERT trigger (it refused every event of the mode).
CREATE OR REPLACE FUNCTION jsonb_event_id(value jsonb)
RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(value) = 'number' AND value::numeric BETWEEN 0 AND 2147483647
                THEN trunc(value::numeric)::integer END;
$$;
