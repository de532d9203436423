-- Runtime queries of the learning loop: heaters_db/heads/{data,store,reproject,jobs,report}.py
-- and `heaters-db train | heads | report`. The rules (retraining, activation, rollback) live in
-- the SQL functions under sql/functions/; these blocks read rows and call those functions.

-- name: stored_mode
SELECT sorting_mode(%(mode)s) AS mode;

-- name: variant
-- The base variant a head is trained on: the one named, else the default variant.
SELECT v.id, v.model_name, v.generation_strategy, v.dim
FROM embedding_variants v
WHERE v.id = coalesce(%(variant_id)s::integer, (default_variant()).id);

-- name: latest_event_id
SELECT coalesce(max(e.id), 0) AS event_id
FROM clip_sorting_events e
WHERE e.sorting_mode = sorting_mode(%(mode)s);

-- name: screens
-- One row per sorting event of the mode up to the watermark (InfoNCE over each screen).
SELECT s.event_id, s.anchor_clip_id, s.selected_clip_id, s.candidate_clip_ids,
       s.rejected_clip_ids, s.split, s.evaluation
FROM sorting_screens s
WHERE s.sorting_mode = sorting_mode(%(mode)s) AND s.event_id <= %(through_event_id)s
ORDER BY s.event_id;

-- name: triplets
-- The (anchor, positive, negative) triplets of the same events; "none similar" events have no
-- positive and train through their screens only.
SELECT t.event_id, t.anchor_clip_id, t.positive_clip_id, t.negative_clip_id, t.weight, t.split
FROM sorting_triplets t
WHERE t.sorting_mode = sorting_mode(%(mode)s) AND t.event_id <= %(through_event_id)s
  AND t.positive_clip_id IS NOT NULL
ORDER BY t.event_id, t.negative_clip_id;

-- name: copy_vectors_of_clips
-- COPY (binary) of one variant's base embeddings for a list of clips.
COPY (
    SELECT e.clip_id, e.embedding FROM embeddings e
    WHERE e.model_name = %(model_name)s AND e.generation_strategy = %(generation_strategy)s
      AND vector_dims(e.embedding) = %(dim)s AND e.clip_id = ANY (%(clip_ids)s::integer[])
    ORDER BY e.clip_id
) TO STDOUT (FORMAT BINARY)

-- name: copy_context_vectors
-- COPY (binary) of a fixed pseudo-random sample of one variant's embeddings (same clips on every
-- run: the order is a hash of the clip id), for the head's PCA initialisation.
COPY (
    SELECT e.clip_id, e.embedding FROM embeddings e
    WHERE e.model_name = %(model_name)s AND e.generation_strategy = %(generation_strategy)s
      AND vector_dims(e.embedding) = %(dim)s
    ORDER BY hashint4(e.clip_id), e.clip_id
    LIMIT %(limit)s
) TO STDOUT (FORMAT BINARY)

-- name: variant_clip_count
-- How many clips have an embedding of the variant (the library the top-rank score scales to, when
-- the context sample holds only part of it).
SELECT count(*) AS clips FROM embeddings e
WHERE e.model_name = %(model_name)s AND e.generation_strategy = %(generation_strategy)s
  AND vector_dims(e.embedding) = %(dim)s;

-- name: copy_all_vectors
-- COPY (binary) of every embedding of one variant, in clip order (re-projection).
COPY (
    SELECT e.clip_id, e.embedding FROM embeddings e
    WHERE e.model_name = %(model_name)s AND e.generation_strategy = %(generation_strategy)s
      AND vector_dims(e.embedding) = %(dim)s
    ORDER BY e.clip_id
) TO STDOUT (FORMAT BINARY)

-- name: setting
SELECT heaters_setting(%(name)s) AS value;

-- name: lock_head_versions
-- Serialises version numbering per mode until the transaction ends.
SELECT pg_advisory_xact_lock(hashtext('heaters_db.projection_heads.version'), hashtext(%(mode)s));

-- name: insert_head
INSERT INTO projection_heads (mode, version, base_variant_id, architecture, weights,
                              weights_checksum, input_dim, output_dim, trained_through_event_id,
                              training_event_count, metrics, status)
SELECT %(mode)s, coalesce(max(h.version), 0) + 1, %(base_variant_id)s, %(architecture)s,
       %(weights)s, %(weights_checksum)s, %(input_dim)s, %(output_dim)s,
       %(trained_through_event_id)s, %(training_event_count)s, %(metrics)s, %(status)s
FROM projection_heads h
WHERE h.mode = %(mode)s
RETURNING id;

-- name: head
SELECT h.id, h.mode, h.version, h.status, h.base_variant_id, h.architecture, h.weights,
       h.weights_checksum, h.input_dim, h.output_dim, h.trained_through_event_id,
       h.training_event_count, h.metrics, h.activated_at, h.inserted_at,
       v.model_name, v.generation_strategy
FROM projection_heads h
JOIN embedding_variants v ON v.id = h.base_variant_id
WHERE h.id = %(head_id)s;

-- name: heads
-- Every head of one mode (or of all modes when mode is NULL), oldest version first.
SELECT h.id, h.mode, h.version, h.status, h.base_variant_id, h.architecture, NULL::bytea AS weights,
       h.weights_checksum, h.input_dim, h.output_dim, h.trained_through_event_id,
       h.training_event_count, h.metrics, h.activated_at, h.inserted_at,
       v.model_name, v.generation_strategy
FROM projection_heads h
JOIN embedding_variants v ON v.id = h.base_variant_id
WHERE %(mode)s::text IS NULL OR h.mode = sorting_mode(%(mode)s::text)
ORDER BY h.mode, h.version;

-- name: active_head
SELECT active_head_id(%(mode)s) AS head_id;

-- name: delete_projected_rows
DELETE FROM projected_embeddings WHERE projection_head_id = %(head_id)s;

-- name: copy_projected_rows
COPY projected_embeddings (clip_id, projection_head_id, embedding, base_checksum) FROM STDIN (FORMAT BINARY)

-- name: raise_maintenance_work_mem
-- For the rest of the transaction only, and never below the server's own setting.
SELECT set_config('maintenance_work_mem',
                  CASE WHEN pg_size_bytes(%(value)s) > pg_size_bytes(current_setting('maintenance_work_mem'))
                       THEN %(value)s ELSE current_setting('maintenance_work_mem') END,
                  true);

-- name: ensure_head_index
SELECT ensure_head_index(%(head_id)s) AS index_name;

-- name: activate_head
SELECT activate_head(%(head_id)s) AS result;

-- name: rollback_head
SELECT rollback_head(%(mode)s) AS result;

-- name: enqueue_train_job
SELECT job_id, enqueued FROM enqueue_train_job(%(mode)s, %(reason)s, %(variant_id)s::integer);

-- name: enqueue_reproject_job
-- One pending re-projection per head (functions/project_head_later.sql); no row: one is pending.
SELECT job_id FROM project_head_later(%(head_id)s, %(reason)s, false) AS job_id
WHERE job_id IS NOT NULL;

-- name: head_is_active
SELECT status = 'active' AS active FROM projection_heads WHERE id = %(head_id)s;

-- name: refresh_head_projections
SELECT refresh_head_projections(%(head_id)s) AS rows;

-- name: job
SELECT id, kind, mode, projection_head_id, variant_id, status, attempts, max_attempts,
       last_error, result, payload
FROM pipeline_jobs WHERE id = %(job_id)s;

-- name: prunable_heads
-- `heaters-db heads prune`: retired heads beyond the newest `keep` of each mode (by version)
-- that still hold projected rows or an index.
SELECT r.id, r.mode, r.version FROM (
    SELECT p.id, p.mode, p.version,
           row_number() OVER (PARTITION BY p.mode ORDER BY p.version DESC) AS newer
    FROM projection_heads p
    WHERE p.status = 'retired' AND (%(mode)s::text IS NULL OR p.mode = sorting_mode(%(mode)s::text))
) r
WHERE r.newer > %(keep)s
  AND (EXISTS (SELECT 1 FROM projected_embeddings e WHERE e.projection_head_id = r.id)
       OR to_regclass(format('projected_embeddings_hnsw_head_%%s', r.id)) IS NOT NULL)
ORDER BY r.mode, r.version;

-- name: lock_head_mode
-- activate_head's lock for the head's mode (held to the end of the transaction).
SELECT pg_advisory_xact_lock(hashtext('heaters_db.activate_head'), hashtext(p.mode))
FROM projection_heads p WHERE p.id = %(head_id)s;

-- name: prune_head_rows
-- After lock_head_mode, in the same transaction, and only while the head is still retired (an
-- activation in between keeps its rows). Returns whether it was retired and the rows deleted.
WITH still_retired AS (
    SELECT p.id FROM projection_heads p WHERE p.id = %(head_id)s AND p.status = 'retired'
), deleted AS (
    DELETE FROM projected_embeddings e USING still_retired s
    WHERE e.projection_head_id = s.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM still_retired) AS retired, (SELECT count(*) FROM deleted) AS rows;

-- name: override_rejected_head
-- `heaters-db heads activate ID --force`: a rejected head becomes a candidate again, its gate
-- metrics kept and the override recorded next to them.
UPDATE projection_heads
SET status = 'candidate', updated_at = now(),
    metrics = metrics || jsonb_build_object('override', jsonb_build_object(
        'forced', true, 'by', current_user, 'at', now(),
        'previous_status', status, 'gate_reason', metrics #>> '{gate,reason}',
        'note', %(note)s::text))
WHERE id = %(head_id)s AND status = 'rejected'
RETURNING id, metrics -> 'override' AS override;

-- name: try_lock_mode
-- one_run_per_mode's session advisory lock on the mode (`train --now`, `heads activate`):
-- taken, or false at once when another session holds it (polled, never waited on).
SELECT pg_try_advisory_lock(hashtext('heaters_db.train_mode'), hashtext(sorting_mode(%(mode)s)))
    AS locked;

-- name: unlock_mode
SELECT pg_advisory_unlock(hashtext('heaters_db.train_mode'), hashtext(sorting_mode(%(mode)s)))
    AS unlocked;

-- name: name_session
-- What pg_stat_activity (and so mode_lock_holder) shows for this connection.
SELECT set_config('application_name', %(name)s, false);

-- name: mode_lock_holder
-- The session that holds try_lock_mode's lock: named in a postponed job's reason and in the
-- waiting log line, so that an operator can find a paused `train --now`
-- (pg_terminate_backend(pid) frees the mode). What pg_stat_activity hides of another role's
-- session from this one is NULL. pg_locks shows a two-key advisory lock as
-- (classid, objid, objsubid 2).
SELECT a.pid, a.application_name, a.usename, host(a.client_addr) AS client_addr,
       round(extract(epoch FROM now() - a.state_change))::bigint AS last_statement_seconds
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = hashtext('heaters_db.train_mode')::oid
  AND l.objid = hashtext(sorting_mode(%(mode)s))::oid AND l.objsubid = 2
LIMIT 1;

-- name: running_mode_jobs
-- The mode's daemon jobs that hold it (one_run_per_mode waits for them): train_head and full
-- reproject jobs running under a live lease. A catch-up builds nothing; an expired lease's
-- worker is paused or gone and its writes are fenced.
SELECT id, kind, lease_owner FROM pipeline_jobs
WHERE mode = sorting_mode(%(mode)s) AND status = 'running'
  AND kind IN ('train_head', 'reproject') AND NOT (payload ? 'catch_up')
  AND lease_expires_at > now()
ORDER BY id;
