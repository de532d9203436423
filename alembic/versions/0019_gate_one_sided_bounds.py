"""The gate decides on one-sided 95 % bounds (the lower ends of 90 % intervals).

No table changes: heaters_db/heads/gate.py now bounds both of its questions (better than the
base space? not worse than the live head by more than the margin?) at one-sided 95 %, where it
used the lower end of a two-sided 95 % interval (one-sided 97.5 %), which was measured to hold
good heads back for a second round. Only the description of gate_noninferiority_margin, which
names the bound, changes; its value is left as set.

Revision ID: 0019
Revises: 0018
"""

from heaters_db import schema

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

DESCRIPTION = (
    "How much worse than the live head a head trained on more events may be and still replace "
    "it: the bound on the one-sided 95% lower bound (the lower end of the 90% interval) of "
    "their paired difference in the gate's score (judged rank score, 0-1, evaluation screens). "
    "A head measured worse on average never replaces the live one."
)
PREVIOUS = (
    "How much worse than the live head a head trained on more events may be and still replace "
    "it: the bound on the lower end of the 95% interval of their paired difference in the "
    "gate's score (judged rank score, 0-1, evaluation screens). A head measured worse on average "
    "never replaces the live one."
)


def upgrade() -> None:
    schema.describe_setting("gate_noninferiority_margin", DESCRIPTION)


def downgrade() -> None:
    schema.describe_setting("gate_noninferiority_margin", PREVIOUS)
