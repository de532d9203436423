-- The k clips nearest to `query` (cosine) in one projection head's space, leaving out one clip:
-- the head's rows of projected_embeddings, through its partial HNSW index (nearest_clips_in_index).
CREATE OR REPLACE FUNCTION nearest_in_head(head_id integer, query vector, k integer, exclude_clip_id integer DEFAULT NULL)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT n.* FROM projection_head_by_id($1) h, nearest_clips_in_index(
        'projected_embeddings', 'p', format('projection_head_id = %s', h.id), h.output_dim,
        format('head %s outputs %s', h.id, h.output_dim), $2, $3, $4) n;
$$;
