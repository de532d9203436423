-- heaters_worker (alembic revision 0012 creates it): what `heaters-db daemon` needs to embed,
-- train, project and index, nothing more. It owns no table and has no TRIGGER privilege, so it
-- cannot attach code that would run as someone else on their writes; index builds go through
-- ensure_variant_index / ensure_head_index (SECURITY DEFINER: CREATE INDEX needs the owner).
GRANT USAGE ON SCHEMA public TO heaters_worker;

-- Reads: the clips to embed, the variants, settings, events and the training views.
GRANT SELECT ON clips, embedding_variants, heaters_db_settings, clip_sorting_events,
    sorting_screens, sorting_triplets, pipeline_queue_status, pipeline_job_errors
TO heaters_worker;
-- The embed job records a variant's dimension on its first embedding (claim_variant_dim).
GRANT UPDATE (dim, updated_at) ON embedding_variants TO heaters_worker;

-- The queue (claim_jobs & co. run as the caller).
GRANT SELECT, INSERT, UPDATE ON pipeline_jobs TO heaters_worker;
GRANT USAGE ON SEQUENCE pipeline_jobs_id_seq TO heaters_worker;

-- Embeddings (idempotent upsert), heads and their projections.
GRANT SELECT, INSERT, UPDATE ON embeddings TO heaters_worker;
GRANT USAGE ON SEQUENCE embeddings_id_seq TO heaters_worker;
GRANT SELECT, INSERT, UPDATE ON projection_heads TO heaters_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON projection_head_activations TO heaters_worker;
GRANT USAGE ON SEQUENCE projection_head_activations_id_seq TO heaters_worker;
GRANT USAGE ON SEQUENCE projection_heads_id_seq TO heaters_worker;
-- UPDATE: refresh_head_projections upserts rows whose base changed (ON CONFLICT DO UPDATE).
GRANT SELECT, INSERT, UPDATE, DELETE ON projected_embeddings TO heaters_worker;
GRANT USAGE ON SEQUENCE projected_embeddings_id_seq TO heaters_worker;

GRANT EXECUTE ON FUNCTION
    apply_head(integer, vector),
    apply_head_batch(integer, vector[]),
    refresh_head_projections(integer),
    apply_head(double precision, vector),
    ensure_variant_index(integer),
    ensure_head_index(integer),
    enqueue_train_job(text, text, integer),
    enqueue_train_job_if_due(text),
    activate_head(integer),
    rollback_head(text),
    similar_clips(integer, text, integer),
    similar_clips(double precision, text, double precision),
    similar_to_embedding(vector, text, integer),
    similar_to_embedding(vector, text, double precision),
    next_anchors(text, integer),
    next_anchors(text, double precision),
    sorting_candidates(integer, text, integer),
    sorting_candidates(double precision, text, double precision)
TO heaters_worker;
