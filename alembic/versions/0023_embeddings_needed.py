"""The backfill asks again for clips whose re-embed died.

A new re-runnable function, embeddings_needed() (sql/functions/embeddings_needed.sql): the
(clip, variant) pairs `heaters-db embed --missing` and enqueue_embed_jobs(only_missing => true)
queue. Besides pairs without a vector it returns those whose latest embed job died after the
vector was written: a clip whose video changed and whose re-embed failed kept serving the old
file's vector and counted as embedded for good. Nothing to change in the tables; the downgrade
drops the function.

Revision ID: 0023
Revises: 0022
"""

from heaters_db import schema

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing in the tables: `migrate` creates the function with the other re-runnable objects."""


def downgrade() -> None:
    schema.drop_functions("embeddings_needed()")
