-- A clip's embedding for one variant, or a clear error: unknown clip, or not embedded yet (with
-- the state of its embed job: raise_not_embedded).
CREATE OR REPLACE FUNCTION clip_base_embedding(query_clip_id integer, variant_id integer)
RETURNS vector
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
DECLARE
    v embedding_variants;
    found_embedding vector;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM clips c WHERE c.id = query_clip_id) THEN
        RAISE EXCEPTION 'unknown clip %', query_clip_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO v FROM embedding_variants WHERE id = variant_id;
    SELECT e.embedding INTO found_embedding FROM embeddings e
    WHERE e.clip_id = query_clip_id AND e.model_name = v.model_name
      AND e.generation_strategy = v.generation_strategy;
    IF found_embedding IS NULL THEN
        PERFORM raise_not_embedded(query_clip_id, v.id,
                                   format('%s / %s embedding', v.model_name, v.generation_strategy));
    END IF;
    RETURN found_embedding;
END;
$$;
