-- The search both nearest_in_variant and nearest_in_head run once they have checked their
-- variant or head: the k clips of `table_name` (embeddings or projected_embeddings, as `alias`)
-- nearest to `query` (cosine), restricted by `predicate`, leaving out one clip. A query of
-- another dimension than `dim` is refused with `space` saying what was expected. Dynamic SQL with the
-- dimension and the predicate as literals, so the planner matches the partial HNSW index of
-- hnsw_index_definition (a bound parameter would not match its predicate).
CREATE OR REPLACE FUNCTION nearest_clips_in_index(table_name text, alias text, predicate text, dim integer,
                                                  space text, query vector, k integer, exclude_clip_id integer)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
SET hnsw.ef_search = 100
-- ef_search cannot exceed 1000; strict-order iterative scanning lets the index return more rows
-- than ef_search when k is large, still in distance order (pgvector >= 0.8).
SET hnsw.iterative_scan = strict_order
-- pgvector 0.8's cost model can rank a parallel full scan + sort below the HNSW index (at
-- 100k 1024-d rows it did for ef_search 100 but not 40 or 200: de-TOASTing is not costed):
-- this function exists to use the index, so the planner is told to (benchmarks/search_latency.py).
SET enable_seqscan = off SET enable_sort = off
AS $$
BEGIN
    IF vector_dims(query) <> dim THEN
        RAISE EXCEPTION 'query vector has % dimensions, %', vector_dims(query), space
            USING ERRCODE = 'data_exception';
    END IF;
    IF vector_norm(query) = 0 THEN
        -- A zero vector has no direction: every cosine distance to it is NaN, so no ranking.
        RAISE EXCEPTION 'query vector is all zeros: it has no cosine distance to anything'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Cosine is scale-free, but pgvector sums it in float32, where the squares of a very small
    -- or very large query underflow or overflow: a query of 1e-25s was at distance 0 from every
    -- clip, one of 1e20s at 1, in table order. l2_normalize sums in double.
    query := l2_normalize(query);
    PERFORM set_config('hnsw.ef_search',
        least(1000, greatest(heaters_setting('hnsw_ef_search')::integer, 2 * (k + 1)))::text, true);
    RETURN QUERY EXECUTE format(
        'SELECT n.clip_id, n.distance, (row_number() OVER (ORDER BY n.distance, n.clip_id))::integer '
        'FROM (SELECT %3$I.clip_id, (%3$I.embedding::vector(%1$s) <=> $1::vector(%1$s))::double precision AS distance '
        '      FROM %2$I %3$I '
        '      WHERE %4$s '
        '      ORDER BY %3$I.embedding::vector(%1$s) <=> $1::vector(%1$s) '
        '      LIMIT $2) n '
        'WHERE n.clip_id IS DISTINCT FROM $3 '
        'ORDER BY n.distance, n.clip_id LIMIT $4',
        dim, table_name, alias, predicate)
    USING query, k + 1, exclude_clip_id, k;
END;
$$;
