-- The value of one heaters_db_settings row, or an error naming the missing setting.
CREATE OR REPLACE FUNCTION heaters_setting(setting_name text) RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT required((SELECT s.value FROM heaters_db_settings s WHERE s.name = $1),
                    format('heaters-db setting "%s" does not exist', $1), 'undefined_object');
$$;
