-- The k clips nearest to `query` (cosine) among one variant's embeddings, leaving out one clip:
-- the variant's model and strategy as literals (nearest_clips_in_index), so the planner matches
-- the partial HNSW index of ensure_variant_index.
CREATE OR REPLACE FUNCTION nearest_in_variant(variant_id integer, query vector, k integer, exclude_clip_id integer DEFAULT NULL)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    v embedding_variants := embedding_variant_with_dim(variant_id);
BEGIN
    IF vector_dims(query) <> v.dim THEN
        RAISE EXCEPTION 'query vector has % dimensions, variant % / % has %',
            vector_dims(query), v.model_name, v.generation_strategy, v.dim
            USING ERRCODE = 'data_exception';
    END IF;
    RETURN QUERY SELECT * FROM nearest_clips_in_index(
        'embeddings', 'e', format('model_name = %L AND generation_strategy = %L', v.model_name, v.generation_strategy),
        v.dim, query, k, exclude_clip_id);
END;
$$;
