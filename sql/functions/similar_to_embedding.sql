-- Public API: the k clips most similar to a raw base-variant vector (e.g. a clip not in the
-- library yet). With an active head the vector is projected first.
--   SELECT * FROM similar_to_embedding('[0.1, ...]'::vector, 'trick', 10);
CREATE OR REPLACE FUNCTION similar_to_embedding(query vector, mode text DEFAULT 'trick', k integer DEFAULT 10)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    head_id integer := active_head_id(mode);
BEGIN
    PERFORM checked_k(k);
    IF query IS NULL THEN
        RAISE EXCEPTION 'query vector is NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF vector_norm(query) = 0 THEN
        -- Checked before a head projects it (NaN cannot enter: pgvector refuses it on input).
        RAISE EXCEPTION 'query vector is all zeros: it has no cosine distance to anything'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Unit length before a head sees it too (heads are scale-free: they normalise their input),
    -- for the reason nearest_clips_in_index gives.
    query := l2_normalize(query);
    IF head_id IS NOT NULL THEN
        RETURN QUERY SELECT * FROM nearest_in_head(head_id, apply_head(head_id, query), k, NULL);
    ELSE
        RETURN QUERY SELECT * FROM nearest_in_variant((default_variant()).id, query, k, NULL);
    END IF;
END;
$$;

-- k sent as bigint, smallint or numeric (functions/integral_argument.sql). No defaults here: similar_to_embedding(v) and
-- similar_to_embedding(v, 'spot') would match both functions equally and be ambiguous.
CREATE OR REPLACE FUNCTION similar_to_embedding(query vector, mode text, k double precision)
RETURNS TABLE (clip_id integer, distance double precision, rank integer)
LANGUAGE sql STABLE SET search_path = public, pg_temp
AS $$
    SELECT * FROM similar_to_embedding($1, $2, integral_argument($3, 'k'));
$$;
