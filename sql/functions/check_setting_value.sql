-- Trigger body (BEFORE INSERT, UPDATE, DELETE ON heaters_db_settings, per row): a setting with a
-- rule takes only values its readers can use (setting_value_problem). Without it a typo surfaced
-- far from its cause, or lost data: holdout_percent = 'abc' made every INSERT into
-- clip_sorting_events fail with "invalid input syntax for type integer", and
-- anchor_random_share = 'abc' broke next_anchors inside PL/Python. Now the UPDATE itself is
-- refused, naming the setting, its range and the value, and nothing changes.
-- A row with a rule is not deleted or renamed either: its readers look it up by name, and
-- heaters_setting raises when it is missing (so events would again be refused).
CREATE OR REPLACE FUNCTION check_setting_value()
RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
DECLARE
    problem text;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.value_kind IS NOT NULL
       AND (TG_OP = 'DELETE' OR NEW.name IS DISTINCT FROM OLD.name) THEN
        RAISE EXCEPTION 'heaters-db setting "%" cannot be % (heaters-db reads it by name)',
            OLD.name, CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'renamed' END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'change its value instead: UPDATE heaters_db_settings SET value = ... WHERE name = ...';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    problem := setting_value_problem(NEW.value, NEW.value_kind, NEW.minimum, NEW.maximum);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'heaters-db setting "%" %', NEW.name, problem
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = coalesce(NEW.description, '');
    END IF;
    RETURN NEW;
END;
$$;
