"""The gate decides on a top-weighted score and a head measured worse than the live one waits.

No table changes: the gate (heaters_db/heads/gate.py) now decides on the judged rank score of
the evaluation screens (the chosen clip near the top of the library, the clips marked clearly
wrong far from it) instead of the chosen clip's library percentile, and a head whose mean
difference against the live head is below zero is refused whatever the margin. Only the
description of gate_noninferiority_margin says what it bounds; its value is left as set.

Revision ID: 0018
Revises: 0017
"""

from heaters_db import schema

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

DESCRIPTION = (
    "How much worse than the live head a head trained on more events may be and still replace "
    "it: the bound on the lower end of the 95% interval of their paired difference in the "
    "gate's score (judged rank score, 0-1, evaluation screens). A head measured worse on average "
    "never replaces the live one."
)
PREVIOUS = (
    "How much worse than the live head (mean chosen-clip library percentile, lower 95% bound) a "
    "head trained on more events may be and still replace it."
)


def _describe(text: str) -> None:
    schema.fetch_one(
        "UPDATE heaters_db_settings SET description = %s "
        "WHERE name = 'gate_noninferiority_margin' RETURNING name",
        (text,),
    )


def upgrade() -> None:
    _describe(DESCRIPTION)


def downgrade() -> None:
    _describe(PREVIOUS)
