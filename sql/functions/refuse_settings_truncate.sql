-- TRUNCATE heaters_db_settings fires no row trigger, so it went past check_setting_value's
-- refusal to delete a setting with a rule: every setting went at once, and then every event
-- INSERT failed ('heaters-db setting "max_candidates_per_event" does not exist'), as did
-- similar_clips. The table holds no data but the settings: a TRUNCATE of it is always refused.
CREATE OR REPLACE FUNCTION refuse_settings_truncate()
RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'heaters_db_settings cannot be truncated (heaters-db reads every setting by name)'
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'change a value instead: UPDATE heaters_db_settings SET value = ... WHERE name = ...';
END;
$$;
