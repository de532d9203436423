"""Event provenance, a fixed anchor-grouped split, event ids from the sequence only.

- clip_sorting_events.anchor_reason (why the anchor was shown: next_anchors' reason, 'random' for
  a client's own uniform pick, 'manual' when the client does not say) and candidate_sources (per
  shown candidate, the `source` sorting_candidates / evaluation_candidates returned; NULL when
  unknown). Old clients keep working: the defaults say "unknown provenance".
- sorting_anchor_splits: each (mode, anchor clip) gets its split (train | validation | holdout)
  once, at its first event, and keeps it: changing a setting never re-cuts history, and all
  events of one anchor sit in one split. Existing events are assigned here by the hash of their
  anchor, with the holdout_percent of today.
- Event ids: the column loses its default; the validation trigger takes every id from the
  sequence (an explicit id is replaced), and the sorter role has no INSERT right on `id`
  (sql/grants/function_privileges.sql), so no client can pick the split or move the retraining
  watermark.
- settings validation_percent (model selection) and gate_noninferiority_margin (the gate);
  head_output_dim 0 (auto: the head size chosen by validation) where it was still the default.

Revision ID: 0013
Revises: 0012
"""

from heaters_db import schema

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SETTINGS = """
INSERT INTO heaters_db_settings (name, value, description) VALUES
    ('validation_percent', '15', 'Share of anchors (assigned at their first event, by a hash of the clip id) whose events select the model (early stopping, head size) and are never trained on. Changing it only affects anchors not yet used.'),
    ('gate_noninferiority_margin', '0.05', 'How much worse than the live head (mean chosen-clip library percentile, lower 95% bound) a head trained on more events may be and still replace it.')
ON CONFLICT (name) DO NOTHING;
UPDATE heaters_db_settings SET description = 'Share of anchors of events without provenance (anchor_reason manual), assigned at their first event by a hash of the clip id, kept out of training for the gate. Changing it only affects anchors not yet used.'
WHERE name = 'holdout_percent';
-- Head size by validation (heaters_db/heads/capacity.py) unless an operator chose one.
UPDATE heaters_db_settings SET value = '0' WHERE name = 'head_output_dim' AND value = '256';
UPDATE heaters_db_settings SET description = 'Output dimension of newly trained projection heads; 0 (the default) chooses the head size by the validation fold, from the base width and the number of events.'
WHERE name = 'head_output_dim';
UPDATE heaters_db_settings SET description = 'Share of next_anchors picks that are evaluation anchors (reason evaluation): uniform draws, shown with evaluation_candidates, judged by the gate and never trained on.'
WHERE name = 'anchor_random_share';
"""

OLD_DESCRIPTIONS = """
UPDATE heaters_db_settings SET description = 'Share of sorting events (by a hash of the event id) kept out of training for the gate.'
WHERE name = 'holdout_percent';
UPDATE heaters_db_settings SET description = 'Share of next_anchors picks drawn uniformly at random (reason random): an unbiased evaluation stream.'
WHERE name = 'anchor_random_share';
DELETE FROM heaters_db_settings WHERE name IN ('validation_percent', 'gate_noninferiority_margin');
UPDATE heaters_db_settings SET value = '256' WHERE name = 'head_output_dim' AND value = '0';
UPDATE heaters_db_settings SET description = 'Output dimension of newly trained projection heads (128, 256 or 512 are typical).'
WHERE name = 'head_output_dim';
"""


def upgrade() -> None:
    schema.execute(
        """
        ALTER TABLE clip_sorting_events
            ADD COLUMN anchor_reason text NOT NULL DEFAULT 'manual',
            ADD COLUMN candidate_sources text[];
        ALTER TABLE clip_sorting_events ALTER COLUMN id DROP DEFAULT;

        CREATE TABLE sorting_anchor_splits (
            sorting_mode text NOT NULL,
            anchor_clip_id integer NOT NULL,
            split text NOT NULL,
            first_event_id integer NOT NULL,
            inserted_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (sorting_mode, anchor_clip_id),
            CONSTRAINT sorting_anchor_splits_split_is_valid
                CHECK (split IN ('train', 'validation', 'holdout'))
        );
        COMMENT ON TABLE sorting_anchor_splits IS
            'The split of every anchor clip of a mode, fixed at its first sorting event.';
        """
    )
    schema.execute(SETTINGS)
    # Past events: one split per anchor, from the hash of the anchor (not of the event id).
    schema.execute(
        """
        INSERT INTO sorting_anchor_splits (sorting_mode, anchor_clip_id, split, first_event_id)
        SELECT e.sorting_mode, e.anchor_clip_id,
               CASE WHEN abs(hashint4(e.anchor_clip_id)::bigint) % 100
                         < (SELECT value::integer FROM heaters_db_settings WHERE name = 'holdout_percent')
                    THEN 'holdout'
                    WHEN abs(hashint4(e.anchor_clip_id)::bigint) % 100
                         < (SELECT value::integer FROM heaters_db_settings WHERE name = 'holdout_percent')
                           + (SELECT value::integer FROM heaters_db_settings WHERE name = 'validation_percent')
                    THEN 'validation'
                    ELSE 'train' END,
               min(e.id)
        FROM clip_sorting_events e
        GROUP BY e.sorting_mode, e.anchor_clip_id
        """
    )


def downgrade() -> None:
    # Today's objects that read the new columns are replaced by their 0.1.0 form (frozen in
    # alembic/released/0.1.0.json, the state this revision started from); a downgrade to 0.1.0
    # re-applies that whole release afterwards anyway.
    schema.execute(
        """
        DROP TRIGGER IF EXISTS clip_sorting_events_assign_split ON clip_sorting_events;
        DROP VIEW IF EXISTS sorting_triplets;
        DROP VIEW IF EXISTS sorting_screens;
        """
    )
    schema.drop_functions(
        "assign_anchor_split()",
        "evaluation_candidates(integer, text, integer)",
        "evaluation_candidates(double precision, text, double precision)",
    )
    schema.run_sql_files(
        "functions/sorting_event_split.sql", "functions/validate_sorting_event.sql"
    )
    schema.execute(
        """
        -- Column INSERT rights (every column but id) back to 0.1.0's table-wide right; a
        -- table-level REVOKE also takes the column-level grants away.
        REVOKE INSERT ON clip_sorting_events FROM heaters_sorter;
        GRANT INSERT ON clip_sorting_events TO heaters_sorter;
        DROP TABLE sorting_anchor_splits;
        ALTER TABLE clip_sorting_events
            DROP COLUMN anchor_reason,
            DROP COLUMN candidate_sources;
        ALTER TABLE clip_sorting_events
            ALTER COLUMN id SET DEFAULT nextval('clip_sorting_events_id_seq'::regclass);
        """
    )
    schema.run_sql_files("views/sorting_screens.sql", "views/sorting_triplets.sql")
    schema.execute(OLD_DESCRIPTIONS)
