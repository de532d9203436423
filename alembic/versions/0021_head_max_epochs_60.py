"""head_max_epochs defaults to 60, the value the learning-curve matrix measures.

No table changes. Below train.MIN_VALIDATION_SCREENS validation screens a training run has
nothing to stop it but the train loss, so it runs to head_max_epochs; a warm start then drifts
from the live head for as long as it runs. On 20 runs of the learning-curve matrix (seeds 0 and
1, the same code), 200 epochs against 60 gave 3 drops instead of 1, 3 lagging rounds instead of
none, 13 of 81 new heads truly worse instead of 3 of 96, and served recall after 100 screens
0.564 instead of 0.657. With a large validation fold early stopping ends a run long before
either (benchmarks/README.md, "Learning loop at scale": best epoch 3 of 23). Only a value still
at the old default moves; an operator's own value stays.

Revision ID: 0021
Revises: 0020
"""

from heaters_db import schema

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

DESCRIPTION = (
    "Most epochs of one training run. With enough validation screens early stopping on the "
    "validation loss ends it sooner; with fewer (a young mode) the run goes this far on the "
    "train loss, so a warm start drifts from the live head for this many epochs."
)
PREVIOUS = (
    "Most epochs of one training run (early stopping on the holdout split usually ends it sooner)."
)


def _set(old: str, new: str, description: str) -> None:
    schema.fetch_one(
        "UPDATE heaters_db_settings SET value = %s WHERE name = 'head_max_epochs' AND value = %s "
        "RETURNING name",
        (new, old),
    )
    schema.describe_setting("head_max_epochs", description)


def upgrade() -> None:
    _set("200", "60", DESCRIPTION)


def downgrade() -> None:
    _set("60", "200", PREVIOUS)
