"""TRUNCATE embeddings takes the projections with it.

A new re-runnable trigger, embeddings_drop_projections_on_truncate (AFTER TRUNCATE ON
embeddings; sql/functions/drop_projections_on_truncate.sql), deletes every projected_embeddings
row. Revision 0022's trigger pair covers DELETE and UPDATE, but TRUNCATE fires no row or
statement DELETE trigger: after `TRUNCATE embeddings` (a "re-embed everything" step) the active
heads went on serving every clip from projections of vectors that no longer existed. Nothing in
the tables; the downgrade drops the trigger and its function.

Revision ID: 0026
Revises: 0025
"""

from heaters_db import schema

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing in the tables: `migrate` creates the trigger with the other re-runnable objects."""


def downgrade() -> None:
    schema.execute("DROP TRIGGER IF EXISTS embeddings_drop_projections_on_truncate ON embeddings")
    schema.drop_functions("drop_projections_on_truncate()")
