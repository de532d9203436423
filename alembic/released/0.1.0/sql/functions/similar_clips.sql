-- Public API: the k clips most similar to a clip, by trick or by spot.
--   SELECT * FROM similar_clips(42, 'trick');
--   SELECT * FROM similar_clips(42, 'spot', 20);
-- SECURITY DEFINER: the sorter role may call it without reading the embeddings tables.
CREATE OR REPLACE FUNCTION similar_clips(clip_id integer, mode text DEFAULT 'trick', k integer DEFAULT 10)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT s.clip_id, s.distance, s.rank FROM search_similar_clips($1, $2, $3) s;
$$;
