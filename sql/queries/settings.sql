-- Named queries about heaters_db_settings (heaters_db/migrations.py).

-- name: settings_outside_rules
-- Stored values their rule refuses (set before revision 0024 added the rules, or while its
-- trigger was off): migrate names them; each is refused the next time it is written.
SELECT name, setting_value_problem(value, value_kind, minimum, maximum) AS problem
FROM heaters_db_settings
WHERE setting_value_problem(value, value_kind, minimum, maximum) IS NOT NULL
ORDER BY name;
