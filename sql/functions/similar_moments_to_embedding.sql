-- Public API: the k moments nearest to a raw base vector (of the window variant's model, e.g. a
-- window embedded elsewhere), in the active head's space of the mode when there is one.
--   SELECT * FROM similar_moments_to_embedding('[...]'::vector, 'trick', 20);
CREATE OR REPLACE FUNCTION similar_moments_to_embedding(query vector, mode text DEFAULT 'trick', k integer DEFAULT 10)
RETURNS TABLE (clip_id integer, start_seconds double precision, end_seconds double precision,
               distance double precision, rank integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT * FROM search_similar_moments($1, $2, $3, NULL);
$$;

-- The same for k sent as bigint, smallint or numeric (functions/integral_argument.sql). No
-- defaults: a call with the vector alone must pick the function above.
CREATE OR REPLACE FUNCTION similar_moments_to_embedding(query vector, mode text, k double precision)
RETURNS TABLE (clip_id integer, start_seconds double precision, end_seconds double precision,
               distance double precision, rank integer)
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT * FROM similar_moments_to_embedding($1, $2, integral_argument($3, 'k'));
$$;
