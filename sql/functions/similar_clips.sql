-- Public API: the k clips most similar to a clip, by trick or by spot.
--   SELECT * FROM similar_clips(42, 'trick');
--   SELECT * FROM similar_clips(42, 'spot', 20);
-- SECURITY DEFINER: the sorter role may call it without reading the embeddings tables.
CREATE OR REPLACE FUNCTION similar_clips(clip_id integer, mode text DEFAULT 'trick', k integer DEFAULT 10)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT s.clip_id, s.distance, s.rank FROM search_similar_clips($1, $2, $3) s;
$$;

-- The same for ids and counts sent as bigint, smallint or numeric (numpy, pandas, JDBC setLong,
-- psycopg's small ints; see functions/integral_argument.sql): integer literals still pick the
-- function above (an exact match wins); 1.5 is refused by name.
CREATE OR REPLACE FUNCTION similar_clips(clip_id double precision, mode text DEFAULT 'trick', k double precision DEFAULT 10)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT * FROM similar_clips(integral_argument($1, 'clip_id'), $2, integral_argument($3, 'k'));
$$;
