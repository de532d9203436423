-- A clip's vector in one head's space: its stored projection, or (a clip embedded moments ago)
-- the head applied to its base embedding on the fly.
CREATE OR REPLACE FUNCTION clip_head_embedding(query_clip_id integer, head_id integer) RETURNS vector
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    projected vector;
    base_variant integer;
BEGIN
    SELECT p.embedding INTO projected FROM projected_embeddings p
    WHERE p.clip_id = query_clip_id AND p.projection_head_id = head_id;
    IF projected IS NOT NULL THEN
        RETURN projected;
    END IF;
    SELECT h.base_variant_id INTO base_variant FROM projection_heads h WHERE h.id = head_id;
    RETURN apply_head(head_id, clip_base_embedding(query_clip_id, base_variant));
END;
$$;
