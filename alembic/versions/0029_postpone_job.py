"""A daemon job that finds its mode held by `train --now` / `heads activate` waits its turn.

The daemon's train_head and reproject jobs ran beside an in-process training or activation of
the same mode (same events trained twice, deadlocks on the activations' index builds). Such a
job is now handed back to the queue without spending an attempt, runnable again later: a new
re-runnable function, postpone_job(job_id, worker, reason, delay_seconds)
(sql/functions/postpone_job.sql). Nothing in the tables; the downgrade drops the function.

Revision ID: 0029
Revises: 0028
"""

from heaters_db import schema

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing in the tables: `migrate` creates the function with the other re-runnable objects."""


def downgrade() -> None:
    schema.drop_functions("postpone_job(integer, text, text, double precision)")
