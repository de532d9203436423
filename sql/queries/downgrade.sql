-- Named queries of heaters_db/downgrade_losses.py: how many rows a downgrade past a revision
-- would delete, each while that revision is applied (its tables and columns exist).

-- name: heaters_tables_created
-- Revision 0001's downgrade drops the heaters tables it created (on an empty database), rows
-- and all; an existing heaters database's own tables are never dropped.
SELECT coalesce(value, '[]'::jsonb) AS tables FROM heaters_db_meta WHERE key = 'created_heaters_tables';

-- name: video_embeddings
-- Revision 0002's downgrade deletes the vectors of the video strategies (the constraint it
-- restores refuses them): hours of encoder time each thousand clips on a CPU.
SELECT count(*) FROM embeddings
WHERE generation_strategy IN ('video_full_clip', 'video_centered_64', 'video_trick_window');

-- name: sorting_events
-- Revision 0005's downgrade drops clip_sorting_events: the people's answers, which nothing
-- can recompute.
SELECT count(*) FROM clip_sorting_events;

-- name: projection_heads
-- Revision 0006's downgrade drops projection_heads (weights, gate metrics, history) and their
-- projections.
SELECT count(*) FROM projection_heads;

-- name: event_provenance
-- Revision 0013's downgrade drops anchor_reason and candidate_sources: which screens were
-- evaluation screens (what the gate judges on). Manual events without sources lose nothing;
-- the anchor splits it drops are derived again on the next upgrade.
SELECT count(*) FROM clip_sorting_events
WHERE anchor_reason <> 'manual' OR candidate_sources IS NOT NULL;

-- name: moment_embeddings
-- Revision 0015's downgrade drops the moment-window vectors.
SELECT count(*) FROM moment_embeddings;

-- name: head_activations
-- Revision 0027's downgrade drops projection_head_activations: which head replaced which, and
-- which activations a rollback undid (what the next rollback restores). Its upgrade rebuilds
-- one row per active head only, so every other row is history lost.
SELECT count(*) FROM projection_head_activations a
WHERE NOT (
    a.undone_at IS NULL
    AND EXISTS (SELECT 1 FROM projection_heads h WHERE h.id = a.head_id AND h.status = 'active')
    AND a.id = (SELECT max(b.id) FROM projection_head_activations b
                WHERE b.mode = a.mode AND b.undone_at IS NULL)
);
