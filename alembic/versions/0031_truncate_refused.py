"""TRUNCATE of clips (while sorting events exist) and of heaters_db_settings is refused, and so
is an UPDATE that moves a clip sorting events name to another id.

TRUNCATE fires no row or DELETE trigger, so it went past two guards:
- `TRUNCATE clips CASCADE` past revision 0012's refuse_clip_delete_with_events: every clip
  went, and the events (no foreign key into heaters' own table) kept naming clips that no
  longer existed. Now refused with the same override (SET LOCAL heaters_db.allow_clip_delete);
- `TRUNCATE heaters_db_settings` past check_setting_value's refusal to delete a setting with a
  rule: then every event INSERT and similar_clips failed on a missing setting. Now refused.
`UPDATE clips SET id = ...` left the events naming an id no clip had, as a DELETE would; refused
like one. Three new re-runnable triggers (sql/functions/refuse_clip_truncate_with_events.sql,
refuse_settings_truncate.sql, refuse_clip_id_change_with_events.sql). Nothing in the tables;
the downgrade drops the triggers and their functions.

Revision ID: 0031
Revises: 0030
"""

from heaters_db import schema

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing in the tables: `migrate` creates the triggers with the other re-runnable objects."""


def downgrade() -> None:
    schema.execute("DROP TRIGGER IF EXISTS clips_refuse_truncate_with_events ON clips")
    schema.execute("DROP TRIGGER IF EXISTS clips_refuse_id_change_with_events ON clips")
    schema.execute(
        "DROP TRIGGER IF EXISTS heaters_db_settings_not_truncated ON heaters_db_settings"
    )
    schema.drop_functions(
        "refuse_clip_truncate_with_events()",
        "refuse_settings_truncate()",
        "refuse_clip_id_change_with_events()",
    )
