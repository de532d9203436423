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
-- Bulk statements are projected later: a statement of more than 256 rows for a head projects
-- nothing inside its transaction; a catch-up job (the same one) projects its rows, so a bulk
-- insert's transaction no longer carries the projection and the head index upkeep
-- (benchmarks/write_path.py: 10k rows, batched trigger vs queued). Smaller statements (the
-- daemon's embed batches, heaters' own inserts) are projected at once, searchable on commit.
-- A statement that finds projected_embeddings locked against writes (a plain CREATE INDEX: the
-- head index a login that does not own the table builds through ensure_head_index, holding a
-- SHARE lock for the whole build) queues its rows the same way instead of waiting behind it:
-- heaters' inserts never wait for a head index build.
-- A session may choose: SET heaters_db.project_embeddings = 'queued' (always later) or
-- 'trigger' (always now, waiting for a lock if it must); unset or 'auto' is the rule above.
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
    choice text := coalesce(nullif(current_setting('heaters_db.project_embeddings', true), ''), 'auto');
    inline_max_rows constant integer := 256;
    reason text;
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
        reason := NULL;
        IF choice = 'queued' OR (choice <> 'trigger' AND cardinality(ids) > inline_max_rows) THEN
            reason := format('queued projection of %s new embedding(s)', cardinality(ids));
        ELSIF choice <> 'trigger' THEN
            BEGIN
                LOCK TABLE projected_embeddings IN ROW EXCLUSIVE MODE NOWAIT;
            EXCEPTION WHEN lock_not_available THEN
                reason := format('queued projection of %s new embedding(s): projected_embeddings '
                                 'was locked against writes (an index build)', cardinality(ids));
            END;
        END IF;
        IF reason IS NOT NULL THEN
            BEGIN
                PERFORM project_head_later(h.id, reason, true);
                CONTINUE;  -- this head's rows are the job's now
            EXCEPTION WHEN OTHERS THEN  -- never fail the write: this head projects inline instead
                RAISE WARNING 'projection head %: no catch-up job queued: %', h.id, SQLERRM;
            END;
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
