-- Clips that get a video are embedded: see functions/enqueue_clip_embed_jobs.sql.
-- (Transition tables cannot be combined with UPDATE OF <column>, so the function compares
-- old and new clip_filepath itself.)
CREATE OR REPLACE TRIGGER clips_enqueue_embed_jobs_on_insert
    AFTER INSERT ON clips
    REFERENCING NEW TABLE AS new_clips
    FOR EACH STATEMENT EXECUTE FUNCTION enqueue_clip_embed_jobs();
CREATE OR REPLACE TRIGGER clips_enqueue_embed_jobs_on_update
    AFTER UPDATE ON clips
    REFERENCING OLD TABLE AS old_clips NEW TABLE AS new_clips
    FOR EACH STATEMENT EXECUTE FUNCTION enqueue_clip_embed_jobs();
