-- Projects, under one head, every clip of its base variant whose projected row is missing or
-- stale (its base_checksum is not the checksum of the clip's base embedding now: re-embedded
-- while the head was a candidate or retired, or written before base_checksum existed).
-- In chunks of 2000 rows, one apply_head_batch call each. Returns how many rows it wrote.
-- activate_head calls it twice: once without a lock (the bulk), once under its lock (what
-- changed meanwhile, normally nothing).
CREATE OR REPLACE FUNCTION refresh_head_projections(head_id integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    h projection_heads;
    v embedding_variants;
    chunk record;
    written integer := 0;
BEGIN
    h := projection_head_by_id(head_id);
    SELECT * INTO v FROM embedding_variants ev WHERE ev.id = h.base_variant_id;
    FOR chunk IN
        WITH stale AS (
            SELECT e.clip_id, e.embedding, row_number() OVER (ORDER BY e.clip_id) AS position
            FROM embeddings e
            LEFT JOIN projected_embeddings p
              ON p.projection_head_id = h.id AND p.clip_id = e.clip_id
            WHERE e.model_name = v.model_name AND e.generation_strategy = v.generation_strategy
              AND vector_dims(e.embedding) = h.input_dim
              AND p.base_checksum IS DISTINCT FROM md5(vector_send(e.embedding))
        )
        SELECT array_agg(s.clip_id ORDER BY s.clip_id) AS ids,
               array_agg(s.embedding ORDER BY s.clip_id) AS vectors
        FROM stale s
        GROUP BY (s.position - 1) / 2000
    LOOP
        INSERT INTO projected_embeddings (clip_id, projection_head_id, embedding, base_checksum)
        SELECT u.clip_id, h.id, u.projected, md5(vector_send(u.base))
        FROM unnest(chunk.ids, apply_head_batch(h.id, chunk.vectors), chunk.vectors)
            AS u(clip_id, projected, base)
        ON CONFLICT (clip_id, projection_head_id)
        DO UPDATE SET embedding = EXCLUDED.embedding, base_checksum = EXCLUDED.base_checksum,
                      updated_at = now();
        written := written + cardinality(chunk.ids);
    END LOOP;
    RETURN written;
END;
$$;
