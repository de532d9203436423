-- The `n` windows nearest to `query` (cosine), leaving out one clip's windows: among a window
-- variant's moment_embeddings (head_id NULL), or among their projections under a head. Raw
-- windows, not merged (search_similar_moments merges them). Dynamic SQL with literals so the
-- planner matches the partial HNSW index of ensure_moment_index / ensure_moment_head_index; the
-- iterative scan keeps returning rows in distance order past the left-out clip.
CREATE OR REPLACE FUNCTION nearest_moments(variant_id integer, head_id integer, query vector, n integer, exclude_clip_id integer DEFAULT NULL)
RETURNS TABLE (clip_id integer, start_seconds double precision, end_seconds double precision, distance double precision)
LANGUAGE plpgsql STABLE
SET search_path = public, pg_temp
SET hnsw.ef_search = 100
SET hnsw.iterative_scan = strict_order
SET enable_seqscan = off
SET enable_sort = off
AS $$
DECLARE
    v embedding_variants;
    dim integer;
BEGIN
    SELECT * INTO v FROM embedding_variants ev WHERE ev.id = variant_id;
    IF head_id IS NULL THEN
        dim := v.dim;
    ELSE
        SELECT h.output_dim INTO dim FROM projection_heads h WHERE h.id = head_id;
    END IF;
    IF dim IS NULL THEN
        RAISE EXCEPTION 'window variant % (% / %) has no dimension yet: embed a clip first',
            v.id, v.model_name, v.generation_strategy USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF vector_dims(query) <> dim THEN
        RAISE EXCEPTION 'query vector has % dimensions, the moment space of % / % has %',
            vector_dims(query), v.model_name, v.generation_strategy, dim
            USING ERRCODE = 'data_exception';
    END IF;
    PERFORM set_config('hnsw.ef_search',
        least(1000, greatest(heaters_setting('hnsw_ef_search')::integer, 2 * n))::text, true);
    IF head_id IS NULL THEN
        RETURN QUERY EXECUTE format(
            'SELECT m.clip_id, m.start_seconds, m.end_seconds, '
            '       (m.embedding::vector(%1$s) <=> $1::vector(%1$s))::double precision '
            'FROM moment_embeddings m '
            'WHERE m.variant_id = %2$s AND m.clip_id IS DISTINCT FROM $2 '
            'ORDER BY m.embedding::vector(%1$s) <=> $1::vector(%1$s) LIMIT $3',
            dim, v.id)
        USING query, exclude_clip_id, n;
    ELSE
        RETURN QUERY EXECUTE format(
            'SELECT m.clip_id, m.start_seconds, m.end_seconds, p.distance '
            'FROM (SELECT q.moment_embedding_id, '
            '             (q.embedding::vector(%1$s) <=> $1::vector(%1$s))::double precision AS distance '
            '      FROM projected_moment_embeddings q '
            '      WHERE q.projection_head_id = %2$s AND q.clip_id IS DISTINCT FROM $2 '
            '      ORDER BY q.embedding::vector(%1$s) <=> $1::vector(%1$s) LIMIT $3) p '
            'JOIN moment_embeddings m ON m.id = p.moment_embedding_id AND m.variant_id = %3$s '
            'ORDER BY p.distance',
            dim, head_id, v.id)
        USING query, exclude_clip_id, n;
    END IF;
END;
$$;
