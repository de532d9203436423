-- Trigger body (AFTER INSERT / AFTER UPDATE ON embeddings, statement level): the new or changed
-- embeddings of the statement are passed through each ACTIVE projection head whose base variant
-- they belong to, in one apply_head_batch call per head (a 10k-row insert is one numpy matrix
-- product, not 10k PL/Python calls), and upserted into projected_embeddings with the checksum of
-- the base vector they came from (base_checksum = md5(vector_send(embedding))), so a row whose
-- base changed later is known to be stale. Heads being re-projected (status candidate) are
-- caught up by activate_head; retired heads when they are re-activated.
-- Never fails the embedding write: an embedding whose dimension does not fit the head is left
-- alone, and a head that cannot project (unreadable weights, out of memory...) is skipped with a
-- WARNING; its rows stay "not projected yet" and a catch-up job is queued for the head
-- (project_head_later, one pending per head), which the daemon retries with backoff until the
-- rows are projected.
-- A session may ask for queued projection instead (SET heaters_db.project_embeddings =
-- 'queued', e.g. a bulk import): nothing is projected inside its transaction, the catch-up job
-- projects the rows (benchmarks/write_path.py measures both; the trigger is the default).
-- SECURITY DEFINER: whoever writes embeddings (the daemon, heaters itself) need not be allowed
-- to call apply_head_batch or write projected_embeddings.
CREATE OR REPLACE FUNCTION project_new_embeddings()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    h record;
    ids integer[];
    vectors vector[];
    projected vector[];
    queued boolean := current_setting('heaters_db.project_embeddings', true) = 'queued';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM projection_heads p WHERE p.status = 'active') THEN
        RETURN NULL;
    END IF;
    FOR h IN
        SELECT p.id, p.input_dim, v.model_name, v.generation_strategy
        FROM projection_heads p JOIN embedding_variants v ON v.id = p.base_variant_id
        WHERE p.status = 'active'
        ORDER BY p.id
    LOOP
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(n.clip_id ORDER BY n.clip_id), array_agg(n.embedding ORDER BY n.clip_id)
            INTO ids, vectors
            FROM new_rows n
            WHERE n.model_name = h.model_name AND n.generation_strategy = h.generation_strategy
              AND vector_dims(n.embedding) = h.input_dim;
        ELSE
            SELECT array_agg(n.clip_id ORDER BY n.clip_id), array_agg(n.embedding ORDER BY n.clip_id)
            INTO ids, vectors
            FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE n.model_name = h.model_name AND n.generation_strategy = h.generation_strategy
              AND vector_dims(n.embedding) = h.input_dim
              AND (n.embedding IS DISTINCT FROM o.embedding OR n.clip_id IS DISTINCT FROM o.clip_id
                   OR n.model_name IS DISTINCT FROM o.model_name
                   OR n.generation_strategy IS DISTINCT FROM o.generation_strategy);
        END IF;
        CONTINUE WHEN ids IS NULL;
        IF queued THEN
            PERFORM project_head_later(h.id, 'queued projection of new embeddings', true);
            CONTINUE;
        END IF;
        BEGIN
            projected := apply_head_batch(h.id, vectors);
            INSERT INTO projected_embeddings (clip_id, projection_head_id, embedding, base_checksum)
            SELECT u.clip_id, h.id, u.projected, md5(vector_send(u.base))
            FROM unnest(ids, projected, vectors) AS u(clip_id, projected, base)
            ON CONFLICT (clip_id, projection_head_id)
            DO UPDATE SET embedding = EXCLUDED.embedding, base_checksum = EXCLUDED.base_checksum,
                          updated_at = now();
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'projection head % could not project % new embedding(s), left "not projected yet" (catch-up job queued): %',
                h.id, cardinality(ids), SQLERRM;
            BEGIN
                PERFORM project_head_later(h.id, 'catch up rows the head could not project: ' || SQLERRM, true);
            EXCEPTION WHEN OTHERS THEN  -- not even the job: the next activation catches up
                RAISE WARNING 'projection head %: no catch-up job queued: %', h.id, SQLERRM;
            END;
        END;
    END LOOP;
    RETURN NULL;
END;
$$;
