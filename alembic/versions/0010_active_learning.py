"""Active learning: next_anchors() and sorting_candidates(), and the settings that tune them.

next_anchors() says which anchors to ask a person about; sorting_candidates() what to show next
to one.

Revision ID: 0010
Revises: 0009
"""

from heaters_db import schema

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ROLE = "heaters_sorter"
SETTING_NAMES = (
    "anchor_cold_start_events",
    "anchor_random_share",
    "anchor_pool_size",
    "anchor_sample_size",
    "anchor_reuse_after_events",
    "near_duplicate_distance",
)


def upgrade() -> None:
    schema.run_sql_files("tables/active_learning_settings.sql")


def downgrade() -> None:
    names = ", ".join(f"'{name}'" for name in SETTING_NAMES)
    schema.execute(f"DELETE FROM heaters_db_settings WHERE name IN ({names})")
