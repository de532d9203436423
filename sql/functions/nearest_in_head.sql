-- The k clips nearest to `query` (cosine) in one projection head's space, leaving out one clip:
-- the head's rows of projected_embeddings, through its partial HNSW index (nearest_clips_in_index).
CREATE OR REPLACE FUNCTION nearest_in_head(head_id integer, query vector, k integer, exclude_clip_id integer DEFAULT NULL)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads := projection_head_by_id(head_id);
BEGIN
    IF vector_dims(query) <> h.output_dim THEN
        RAISE EXCEPTION 'query vector has % dimensions, head % outputs %', vector_dims(query), h.id, h.output_dim
            USING ERRCODE = 'data_exception';
    END IF;
    RETURN QUERY SELECT * FROM nearest_clips_in_index(
        'projected_embeddings', 'p', format('projection_head_id = %s', h.id), h.output_dim, query, k, exclude_clip_id);
END;
$$;
