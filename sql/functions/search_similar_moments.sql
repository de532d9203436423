-- The body of similar_moments / similar_moments_to_embedding: the k moments nearest to a base
-- vector `query`, in the active head's space of the mode when there is one (the query goes
-- through apply_head), else in the window variant's own space. One clip's windows may be left
-- out (the query clip).
--
-- Merging: the nearest windows come back in distance order (a pool of max(8k, 64), at most
-- 1000); each either joins a moment of the same clip it overlaps, or starts a new one. A moment
-- is its best window (its distance) widened by the windows that overlap that best window; a
-- window overlapping a moment anywhere else is absorbed without widening it, so a moment does
-- not creep along a clip whose every window is near, and the moments of one clip never overlap.
CREATE OR REPLACE FUNCTION search_similar_moments(query vector, mode text, k integer, exclude_clip_id integer DEFAULT NULL)
RETURNS TABLE (clip_id integer, start_seconds double precision, end_seconds double precision,
               distance double precision, rank integer)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    head_id integer := active_head_id(mode);  -- also validates the mode
    v embedding_variants := moment_variant(mode);
    h projection_heads;
    search_query vector := query;
    hit record;
    m_clip integer[] := '{}';
    m_seed_start double precision[] := '{}';
    m_seed_end double precision[] := '{}';
    m_start double precision[] := '{}';
    m_end double precision[] := '{}';
    m_distance double precision[] := '{}';
    joined boolean;
    i integer;
BEGIN
    PERFORM checked_k(k);
    IF query IS NULL THEN
        RAISE EXCEPTION 'query vector is NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- As similar_to_embedding: a zero vector has no cosine distance (NaN for every window), and
    -- one of tiny norm reads as distance 0 to everything in float32 unless made unit length.
    IF vector_norm(query) = 0 THEN
        RAISE EXCEPTION 'query vector is all zeros: it has no cosine distance to anything'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    search_query := l2_normalize(query);
    IF head_id IS NOT NULL THEN
        SELECT * INTO h FROM projection_heads p WHERE p.id = head_id;
        IF vector_dims(query) <> h.input_dim THEN
            RAISE EXCEPTION 'query vector has % dimensions, the base space of head % (%) has %',
                vector_dims(query), h.id, h.mode, h.input_dim USING ERRCODE = 'data_exception';
        END IF;
        search_query := apply_head(head_id, search_query);
    END IF;
    FOR hit IN
        SELECT * FROM nearest_moments(v.id, head_id, search_query, least(1000, greatest(8 * k, 64)), exclude_clip_id) n
        ORDER BY n.distance, n.clip_id, n.start_seconds
    LOOP
        joined := false;
        FOR i IN 1 .. coalesce(array_length(m_clip, 1), 0) LOOP
            CONTINUE WHEN m_clip[i] <> hit.clip_id;
            IF hit.start_seconds < m_end[i] AND hit.end_seconds > m_start[i] THEN
                IF hit.start_seconds < m_seed_end[i] AND hit.end_seconds > m_seed_start[i] THEN
                    m_start[i] := least(m_start[i], hit.start_seconds);
                    m_end[i] := greatest(m_end[i], hit.end_seconds);
                END IF;
                joined := true;
                EXIT;
            END IF;
        END LOOP;
        IF NOT joined AND coalesce(array_length(m_clip, 1), 0) < k THEN
            m_clip := m_clip || hit.clip_id;
            m_seed_start := m_seed_start || hit.start_seconds;
            m_seed_end := m_seed_end || hit.end_seconds;
            m_start := m_start || hit.start_seconds;
            m_end := m_end || hit.end_seconds;
            m_distance := m_distance || hit.distance;
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT t.c, t.s, t.e, t.d, (row_number() OVER (ORDER BY t.d, t.c, t.s))::integer
        FROM unnest(m_clip, m_start, m_end, m_distance) AS t(c, s, e, d)
        ORDER BY t.d, t.c, t.s;
END;
$$;
