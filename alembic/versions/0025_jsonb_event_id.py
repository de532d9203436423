"""A garbled train_head job no longer refuses every sorting event of its mode.

The retrain watermark (enqueue_train_job_if_due, run by the AFTER INSERT trigger on
clip_sorting_events) cast every finished train_head job's `payload ->> 'events_through'` and
`result ->> 'trained_through_event_id'` to integer: one job row edited by hand to hold text or a
number past int4 ('abc', 1e12) made the cast fail inside the trigger, and so every INSERT of an
event of that mode ("invalid input syntax for type integer"). A new re-runnable function,
jsonb_event_id(jsonb) (sql/functions/jsonb_event_id.sql), reads such a value as NULL instead,
and enqueue_due_train_jobs turns any failure to enqueue into a WARNING: the events are stored.
Nothing in the tables; the downgrade drops the function.

Revision ID: 0025
Revises: 0024
"""

from heaters_db import schema

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing in the tables: `migrate` creates the function with the other re-runnable objects."""


def downgrade() -> None:
    schema.drop_functions("jsonb_event_id(jsonb)")
