"""The append-only sorting event log, validated by the database.

Revision ID: 0005
Revises: 0004
"""

from heaters_db import schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.run_sql_files(
        "tables/clip_sorting_events.sql",
        "functions/validate_sorting_event.sql",
        "functions/refuse_sorting_event_change.sql",
        "functions/notify_sorting_events.sql",
        "triggers/clip_sorting_events_triggers.sql",
    )
    schema.execute("REVOKE ALL ON FUNCTION validate_sorting_event() FROM PUBLIC")


def downgrade() -> None:
    schema.execute("DROP TABLE clip_sorting_events")
    schema.drop_functions(
        "validate_sorting_event()", "refuse_sorting_event_change()", "notify_sorting_events()"
    )
