"""The learning loop in the database: retraining after enough sorting events, projecting new
embeddings under the active heads at once, and activating / rolling back heads atomically.

- clip_sorting_events_retrain: after `retrain_every` new events of a mode, enqueue one
  train_head job (deduplicated) and NOTIFY heaters_db_jobs.
- embeddings_project_new_on_insert/_on_update: a clip embedded after a head went live gets its
  projected row in the same transaction (apply_head).
- activate_head(head_id) / rollback_head(mode): switch the head that serves a mode in one
  transaction; retired heads keep their rows and index, so a rollback restores results exactly.
- enqueue_train_job(mode, reason, base_variant_id): what `heaters-db train` calls.
- settings head_output_dim, head_hidden_dim, head_max_epochs: the shape of trained heads.

Revision ID: 0011
Revises: 0010
"""

from heaters_db import schema

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SETTING_NAMES = ("head_output_dim", "head_hidden_dim", "head_max_epochs")
# Administrative functions: not for PUBLIC (the sorter role only inserts events and searches).
ADMIN_FUNCTIONS = (
    "enqueue_train_job(text, text, integer)",
    "enqueue_train_job_if_due(text)",
    "activate_head(integer)",
    "rollback_head(text)",
)
TRIGGER_FUNCTIONS = ("enqueue_due_train_jobs()", "project_new_embeddings()")


def upgrade() -> None:
    schema.run_sql_files(
        "tables/learning_loop_settings.sql",
        "functions/enqueue_train_job.sql",
        "functions/enqueue_train_job_if_due.sql",
        "functions/enqueue_due_train_jobs.sql",
        "triggers/clip_sorting_events_retrain.sql",
        "functions/project_new_embeddings.sql",
        "triggers/embeddings_project_new.sql",
        "functions/activate_head.sql",
        "functions/rollback_head.sql",
    )
    for signature in ADMIN_FUNCTIONS + TRIGGER_FUNCTIONS:
        schema.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")


def downgrade() -> None:
    schema.execute("DROP TRIGGER IF EXISTS embeddings_project_new_on_insert ON embeddings")
    schema.execute("DROP TRIGGER IF EXISTS embeddings_project_new_on_update ON embeddings")
    schema.execute("DROP TRIGGER IF EXISTS clip_sorting_events_retrain ON clip_sorting_events")
    schema.drop_functions(
        "rollback_head(text)",
        "activate_head(integer)",
        "project_new_embeddings()",
        "enqueue_due_train_jobs()",
        "enqueue_train_job_if_due(text)",
        "enqueue_train_job(text, text, integer)",
    )
    names = ", ".join(f"'{name}'" for name in SETTING_NAMES)
    schema.execute(f"DELETE FROM heaters_db_settings WHERE name IN ({names})")
