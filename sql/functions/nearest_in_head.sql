-- The k clips nearest to `query` (cosine) in one projection head's space, leaving out one clip.
-- Same pattern as nearest_in_variant: literals in dynamic SQL to hit the head's partial index.
CREATE OR REPLACE FUNCTION nearest_in_head(head_id integer, query vector, k integer, exclude_clip_id integer DEFAULT NULL)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE plpgsql STABLE
SET search_path = public, pg_temp
SET hnsw.ef_search = 100
-- ef_search cannot exceed 1000; strict-order iterative scanning lets the index return more rows
-- than ef_search when k is large, still in distance order (pgvector >= 0.8).
SET hnsw.iterative_scan = strict_order
-- pgvector 0.8's cost model can rank a parallel full scan + sort below the HNSW index (at
-- 100k 1024-d rows it did for ef_search 100 but not 40 or 200: de-TOASTing is not costed):
-- this function exists to use the index, so the planner is told to (benchmarks/search_latency.py).
SET enable_seqscan = off
SET enable_sort = off
AS $$
DECLARE
    h projection_heads;
BEGIN
    SELECT * INTO h FROM projection_heads WHERE id = head_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown projection head %', head_id USING ERRCODE = 'no_data_found';
    END IF;
    IF vector_dims(query) <> h.output_dim THEN
        RAISE EXCEPTION 'query vector has % dimensions, head % outputs %', vector_dims(query), h.id, h.output_dim
            USING ERRCODE = 'data_exception';
    END IF;
    IF vector_norm(query) = 0 THEN
        -- A zero vector has no direction: every cosine distance to it is NaN, so no ranking.
        RAISE EXCEPTION 'query vector is all zeros: it has no cosine distance to anything'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('hnsw.ef_search',
        least(1000, greatest(heaters_setting('hnsw_ef_search')::integer, 2 * (k + 1)))::text, true);
    RETURN QUERY EXECUTE format(
        'SELECT n.clip_id, n.distance, (row_number() OVER (ORDER BY n.distance, n.clip_id))::integer '
        'FROM (SELECT p.clip_id, (p.embedding::vector(%1$s) <=> $1::vector(%1$s))::double precision AS distance '
        '      FROM projected_embeddings p '
        '      WHERE p.projection_head_id = %2$s '
        '      ORDER BY p.embedding::vector(%1$s) <=> $1::vector(%1$s) '
        '      LIMIT $2) n '
        'WHERE n.clip_id IS DISTINCT FROM $3 '
        'ORDER BY n.distance, n.clip_id LIMIT $4',
        h.output_dim, h.id)
    USING query, k + 1, exclude_clip_id, k;
END;
$$;
