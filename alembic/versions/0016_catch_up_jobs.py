"""Catch-up jobs: rows a head could not project, or left to a queued projection, get projected.

The embeddings trigger queues a `reproject` job with payload {"catch_up": true} for a head
when it could not project a statement's rows (a broken head) or left them to the daemon (a bulk
statement, or a session that asked for queued projection): the job projects only the rows that
are missing or stale (refresh_head_projections). Such a job is deduplicated among the queued
ones only: a catch-up already running may have read the embeddings before the new rows
committed, so a new one must be able to queue behind it. A full re-projection stays one per
head, queued or running, as before.

Revision ID: 0016
Revises: 0015
"""

from heaters_db import schema

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.execute(
        """
        DROP INDEX pipeline_jobs_pending_reproject;
        CREATE UNIQUE INDEX pipeline_jobs_pending_reproject ON pipeline_jobs (projection_head_id)
            WHERE kind = 'reproject' AND status IN ('queued', 'running')
              AND NOT (payload ? 'catch_up');
        CREATE UNIQUE INDEX pipeline_jobs_queued_catch_up ON pipeline_jobs (projection_head_id)
            WHERE kind = 'reproject' AND status = 'queued' AND payload ? 'catch_up';
        """
    )


def downgrade() -> None:
    # New re-runnable functions of this revision: gone below it.
    schema.drop_functions(
        "project_head_later(integer, text, boolean)",
        "project_stale_moment_embeddings(integer)",
    )
    # Pending catch-ups would not fit the older index (one reproject per head); the next
    # activation refreshes what they would have projected.
    schema.execute(
        """
        DELETE FROM pipeline_jobs
        WHERE kind = 'reproject' AND payload ? 'catch_up' AND status IN ('queued', 'running');
        DROP INDEX pipeline_jobs_queued_catch_up;
        DROP INDEX pipeline_jobs_pending_reproject;
        CREATE UNIQUE INDEX pipeline_jobs_pending_reproject ON pipeline_jobs (projection_head_id)
            WHERE kind = 'reproject' AND status IN ('queued', 'running');
        """
    )
