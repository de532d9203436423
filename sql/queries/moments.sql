-- Runtime queries of moments (heaters_db/moments.py): window vectors of the window variants.

-- name: delete_clip_windows
-- A clip's windows are rewritten whole: its duration (so its windows) may have changed.
DELETE FROM moment_embeddings WHERE clip_id = %(clip_id)s AND variant_id = %(variant_id)s;

-- name: insert_window
INSERT INTO moment_embeddings (clip_id, variant_id, start_seconds, end_seconds, embedding, model_version)
VALUES (%(clip_id)s, %(variant_id)s, %(start_seconds)s, %(end_seconds)s, %(embedding)s, %(model_version)s);

-- name: ensure_moment_index
SELECT ensure_moment_index(%(variant_id)s) AS index_name;

-- name: project_moment_embeddings
SELECT project_moment_embeddings(%(head_id)s) AS rows;
