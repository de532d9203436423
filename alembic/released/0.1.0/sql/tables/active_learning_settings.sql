-- Settings of next_anchors() and sorting_candidates() (rows of heaters_db_settings, which
-- tables/heaters_db_settings.sql creates). Re-runnable: existing values are kept.
INSERT INTO heaters_db_settings (name, value, description) VALUES
    ('anchor_cold_start_events', '50', 'next_anchors picks typical, diverse clips (k-means medoids) while a mode has fewer sorting events than this; then ambiguous ones.'),
    ('anchor_random_share', '0.15', 'Share of next_anchors picks drawn uniformly at random (reason random): an unbiased evaluation stream.'),
    ('anchor_pool_size', '32', 'Random unused clips next_anchors scores for ambiguity per call after the cold start (each costs one HNSW query, two with an active head).'),
    ('anchor_sample_size', '2000', 'Clips (a fixed hash sample) next_anchors clusters with k-means during the cold start.'),
    ('anchor_reuse_after_events', '1000', 'A clip used as an anchor in this many most recent events of a mode is not proposed again.'),
    ('near_duplicate_distance', '0.01', 'Cosine distance below which two clips count as near-duplicates: never two such anchors, nor two such candidates on one screen.')
ON CONFLICT (name) DO NOTHING;
