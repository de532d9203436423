-- The value of one heaters_db_settings row, or an error naming the missing setting.
CREATE OR REPLACE FUNCTION heaters_setting(setting_name text)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    setting_value text;
BEGIN
    SELECT s.value INTO setting_value FROM heaters_db_settings s WHERE s.name = setting_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'heaters-db setting "%" does not exist', setting_name
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN setting_value;
END;
$$;
