-- Who may call what. New functions are executable by PUBLIC unless revoked, so every
-- heaters-db function that is not part of the public read API is revoked here, each migrate.
-- heaters_sorter (alembic revision 0009 creates it) gets the read API and event inserts: every
-- read of the sorting page goes through a SECURITY DEFINER function, so the page runs with it alone.
REVOKE ALL ON FUNCTION enqueue_clip_embed_jobs() FROM PUBLIC;
REVOKE ALL ON FUNCTION validate_sorting_event() FROM PUBLIC;
REVOKE ALL ON FUNCTION apply_head(integer, vector) FROM PUBLIC;
REVOKE ALL ON FUNCTION apply_head_batch(integer, vector[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION refresh_head_projections(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION next_anchors_pick(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION similar_clips(integer, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION similar_to_embedding(vector, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION next_anchors(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION sorting_candidates(integer, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION evaluation_candidates(integer, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION assign_anchor_split() FROM PUBLIC;
REVOKE ALL ON FUNCTION enqueue_train_job(text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION enqueue_train_job_if_due(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION activate_head(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION rollback_head(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION enqueue_due_train_jobs() FROM PUBLIC;
REVOKE ALL ON FUNCTION project_new_embeddings() FROM PUBLIC;
REVOKE ALL ON FUNCTION drop_orphaned_projections() FROM PUBLIC;
REVOKE ALL ON FUNCTION drop_projections_on_truncate() FROM PUBLIC;
REVOKE ALL ON FUNCTION refuse_clip_delete_with_events() FROM PUBLIC;
REVOKE ALL ON FUNCTION refuse_clip_truncate_with_events() FROM PUBLIC;
REVOKE ALL ON FUNCTION refuse_clip_id_change_with_events() FROM PUBLIC;
REVOKE ALL ON FUNCTION ensure_variant_index(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ensure_head_index(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION apply_head(double precision, vector) FROM PUBLIC;
REVOKE ALL ON FUNCTION similar_clips(double precision, text, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION similar_to_embedding(vector, text, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION next_anchors(text, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION sorting_candidates(double precision, text, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION sorting_clip_files(numeric[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION active_head_info(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION evaluation_candidates(double precision, text, double precision) FROM PUBLIC;

GRANT USAGE ON SCHEMA public TO heaters_sorter;
-- Every column but id: ids come from the sequence only (validate_sorting_event replaces any id
-- sent; without the column right a sorter's explicit id is refused outright).
REVOKE INSERT ON clip_sorting_events FROM heaters_sorter, PUBLIC;
GRANT INSERT (anchor_clip_id, selected_clip_id, rejected_clip_ids, candidate_clip_ids, sorting_mode,
              session_id, response_time_ms, candidate_rankings, inserted_at, updated_at,
              anchor_reason, candidate_sources)
    ON clip_sorting_events TO heaters_sorter;
-- INSERT ... RETURNING id needs SELECT on the returned column, and nothing more.
GRANT SELECT (id) ON clip_sorting_events TO heaters_sorter;
GRANT USAGE ON SEQUENCE clip_sorting_events_id_seq TO heaters_sorter;
GRANT EXECUTE ON FUNCTION
    similar_clips(integer, text, integer),
    similar_to_embedding(vector, text, integer),
    next_anchors(text, integer),
    sorting_candidates(integer, text, integer),
    similar_clips(double precision, text, double precision),
    similar_to_embedding(vector, text, double precision),
    next_anchors(text, double precision),
    sorting_candidates(double precision, text, double precision),
    sorting_clip_files(numeric[]),
    active_head_info(text),
    evaluation_candidates(integer, text, integer),
    evaluation_candidates(double precision, text, double precision)
TO heaters_sorter;
