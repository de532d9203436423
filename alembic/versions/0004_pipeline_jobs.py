"""The durable job queue, its SQL API, status views, and the clip trigger that feeds it.

Revision ID: 0004
Revises: 0003
"""

from heaters_db import schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FUNCTIONS = (
    "enqueue_embed_jobs(integer[], boolean, integer[])",
    "enqueue_clip_embed_jobs()",
    "claim_jobs(text, text[], integer, integer)",
    "requeue_expired_jobs()",
    "extend_job_leases(text, integer[], integer)",
    "finish_job(integer, text, text, jsonb)",
    "fail_job(integer, text, text, text, double precision)",
    "release_jobs(text, integer[])",
)


def upgrade() -> None:
    schema.run_sql_files(
        "tables/pipeline_jobs.sql",
        "functions/enqueue_embed_jobs.sql",
        "functions/enqueue_clip_embed_jobs.sql",
        "functions/requeue_expired_jobs.sql",
        "functions/claim_jobs.sql",
        "functions/extend_job_leases.sql",
        "functions/finish_job.sql",
        "functions/fail_job.sql",
        "functions/release_jobs.sql",
        "views/pipeline_queue_status.sql",
        "views/pipeline_job_errors.sql",
        "triggers/clips_enqueue_embed_jobs.sql",
    )
    schema.execute("REVOKE ALL ON FUNCTION enqueue_clip_embed_jobs() FROM PUBLIC")


def downgrade() -> None:
    schema.execute("DROP TRIGGER clips_enqueue_embed_jobs_on_insert ON clips")
    schema.execute("DROP TRIGGER clips_enqueue_embed_jobs_on_update ON clips")
    schema.execute("DROP VIEW pipeline_job_errors")
    schema.execute("DROP VIEW pipeline_queue_status")
    schema.drop_functions(*FUNCTIONS)
    schema.execute("DROP TABLE pipeline_jobs")
