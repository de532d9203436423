-- How refusal messages name a list of ids: the first five and the count, never the whole array
-- (10k ids would be a 70 KB message, and would tell a client which ids exist).
--   clip_id_list('{4,8,15,16,23,42}') = '{4,8,15,16,23,...} (6 ids)'
CREATE OR REPLACE FUNCTION clip_id_list(ids integer[])
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = public, pg_temp
AS $$
    SELECT CASE
        WHEN ids IS NULL THEN 'NULL'
        WHEN cardinality(ids) <= 5 THEN ids::text
        ELSE format('{%s,...} (%s ids)', array_to_string(ids[1:5], ','), cardinality(ids))
    END;
$$;
