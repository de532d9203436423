-- The k clips nearest to `query` (cosine) among one variant's embeddings, leaving out one clip:
-- the variant's model and strategy as literals (nearest_clips_in_index), so the planner matches
-- the partial HNSW index of ensure_variant_index.
CREATE OR REPLACE FUNCTION nearest_in_variant(variant_id integer, query vector, k integer, exclude_clip_id integer DEFAULT NULL)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$ SELECT n.* FROM embedding_variant_with_dim($1) v, nearest_clips_in_index(
    'embeddings', 'e', format('model_name = %L AND generation_strategy = %L', v.model_name, v.generation_strategy),
    v.dim, format('variant %s / %s has %s', v.model_name, v.generation_strategy, v.dim), $2, $3, $4) n $$;
