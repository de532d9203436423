-- Refuse setting values their readers cannot use (functions/check_setting_value.sql). Not on a
-- change of the description alone: a revision rewording it must not trip over an old value.
CREATE OR REPLACE TRIGGER heaters_db_settings_checked
BEFORE INSERT OR DELETE OR UPDATE OF name, value, value_kind, minimum, maximum
ON heaters_db_settings
FOR EACH ROW EXECUTE FUNCTION check_setting_value();
-- TRUNCATE fires no row trigger: refused by its own (functions/refuse_settings_truncate.sql).
CREATE OR REPLACE TRIGGER heaters_db_settings_not_truncated
BEFORE TRUNCATE ON heaters_db_settings
FOR EACH STATEMENT EXECUTE FUNCTION refuse_settings_truncate();
