-- Public API: the k moments (clip, start, end) most similar to a time range of a clip, by trick
-- or by spot, from the window variants (video_moment_windows); moments of the query clip itself
-- are left out. Uses the active head of the mode when there is one.
--   SELECT * FROM similar_moments(42, 3.0, 4.5, 'trick');
-- SECURITY DEFINER: the sorter role may call it without reading the embeddings tables.
-- LANGUAGE sql because PL/pgSQL cannot have an input and an output column both named clip_id.
CREATE OR REPLACE FUNCTION similar_moments(clip_id integer, start_seconds double precision,
                                           end_seconds double precision, mode text DEFAULT 'trick',
                                           k integer DEFAULT 10)
RETURNS TABLE (clip_id integer, start_seconds double precision, end_seconds double precision,
               distance double precision, rank integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT * FROM search_similar_moments(
        moment_query_embedding($1, $2, $3, (moment_variant($4)).id), $4, $5, $1);
$$;

-- The same for a clip id and k sent as bigint, smallint or numeric (functions/integral_argument.sql).
CREATE OR REPLACE FUNCTION similar_moments(clip_id double precision, start_seconds double precision,
                                           end_seconds double precision, mode text DEFAULT 'trick',
                                           k double precision DEFAULT 10)
RETURNS TABLE (clip_id integer, start_seconds double precision, end_seconds double precision,
               distance double precision, rank integer)
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT * FROM similar_moments(integral_argument($1, 'clip_id'), $2, $3, $4, integral_argument($5, 'k'));
$$;
