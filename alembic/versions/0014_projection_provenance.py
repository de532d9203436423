"""Projected rows remember the base embedding they were computed from.

projected_embeddings gets base_checksum: md5(vector_send(embedding)) of the base row (the
head's base variant, same clip) it was computed from. heaters' updated_at has one-second
precision and is not always touched, so it cannot tell. A row whose base was re-embedded since (another
checksum, or NULL for rows written before this revision) is stale: activate_head and the
re-projection refresh exactly those rows, so a head that was a candidate or retired while a
clip was re-embedded never serves the old vector.

Revision ID: 0014
Revises: 0013
"""

from heaters_db import schema

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.execute(
        """
        ALTER TABLE projected_embeddings ADD COLUMN base_checksum text;
        """
    )


def downgrade() -> None:
    # New re-runnable functions of this release (sql/functions/lock_job_lease.sql,
    # dead_letter_job.sql): gone below it.
    schema.drop_functions(
        "lock_job_lease(integer, text, timestamptz)",
        "dead_letter_job(integer, text, text, text)",
        "apply_head_batch(integer, vector[])",
        "refresh_head_projections(integer)",
        "head_index_definition(integer)",
        "variant_index_definition(integer)",
    )
    schema.execute(
        """
        ALTER TABLE projected_embeddings DROP COLUMN base_checksum;
        """
    )
