"""Settings get rules: the kind and range of value each one's readers can use.

Three columns on heaters_db_settings (value_kind 'integer' or 'number', minimum, maximum), filled
for every setting heaters-db has; the re-runnable trigger heaters_db_settings_checked
(sql/functions/check_setting_value.sql, setting_value_problem.sql) refuses a value outside them,
and the deletion or renaming of such a row. Before, any text was stored and failed where it
was read: holdout_percent = 'abc' made every sorting event INSERT fail ("invalid input syntax
for type integer"), anchor_random_share = 'abc' broke next_anchors. Values already stored are
kept as they are (an operator's value is never rewritten); `heaters-db migrate` names the ones
outside their rule. The downgrade drops the trigger, its functions and the columns.

Revision ID: 0024
Revises: 0023
"""

from heaters_db import schema

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# (name, kind, minimum, maximum): None = unbounded. The bounds are what the readers accept
# (a percentage of anchors, a share of picks, pgvector's hnsw.ef_search range, TrainConfig's
# checks), not a judgement of good values.
RULES = (
    ("anchor_ambiguity", "integer", 0, 1),
    ("anchor_cold_start_events", "integer", 0, None),
    ("anchor_pool_size", "integer", 1, None),
    ("anchor_random_share", "number", 0, 1),
    ("anchor_reuse_after_events", "integer", 0, None),
    ("anchor_sample_size", "integer", 1, None),
    ("gate_noninferiority_margin", "number", 0, 1),
    ("head_hidden_dim", "integer", 0, None),
    ("head_max_epochs", "integer", 0, None),
    ("head_output_dim", "integer", 0, None),
    ("hnsw_ef_search", "integer", 1, 1000),
    ("holdout_percent", "integer", 0, 100),
    ("implicit_negative_weight", "number", 0, None),
    ("job_max_attempts", "integer", 1, None),
    ("max_candidates_per_event", "integer", 1, None),
    ("near_duplicate_distance", "number", 0, 2),
    ("retrain_every", "integer", 1, None),
    ("validation_percent", "integer", 0, 100),
)


def upgrade() -> None:
    schema.execute(
        "ALTER TABLE heaters_db_settings "
        "ADD COLUMN value_kind text CHECK (value_kind IN ('integer', 'number')), "
        "ADD COLUMN minimum numeric, ADD COLUMN maximum numeric"
    )
    schema.execute(
        "COMMENT ON COLUMN heaters_db_settings.value_kind IS "
        "'integer or number: what value must hold (NULL: any text); minimum and maximum bound it'"
    )
    for name, kind, minimum, maximum in RULES:
        schema.fetch_one(
            "UPDATE heaters_db_settings SET value_kind = %s, minimum = %s, maximum = %s "
            "WHERE name = %s RETURNING name",
            (kind, minimum, maximum, name),
        )


def downgrade() -> None:
    schema.execute("DROP TRIGGER IF EXISTS heaters_db_settings_checked ON heaters_db_settings")
    schema.drop_functions(
        "check_setting_value()", "setting_value_problem(text, text, numeric, numeric)"
    )
    schema.execute(
        "ALTER TABLE heaters_db_settings "
        "DROP COLUMN value_kind, DROP COLUMN minimum, DROP COLUMN maximum"
    )
