"""Training views over the sorting events: sorting_screens and sorting_triplets.

Revision ID: 0007
Revises: 0006
"""

from heaters_db import schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.run_sql_files(
        "functions/sorting_event_split.sql",
        "views/sorting_screens.sql",
        "views/sorting_triplets.sql",
    )


def downgrade() -> None:
    schema.execute("DROP VIEW sorting_triplets")
    schema.execute("DROP VIEW sorting_screens")
    schema.drop_functions("sorting_event_split(integer)")
