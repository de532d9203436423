"""next_anchors covers the library: after the cold start, the least-asked clips of its pool.

No table changes. A new setting, anchor_ambiguity (0 by default): 0 picks, from next_anchors'
random pool of clips not used recently and not held out, those asked about least often as
anchors (reason least_asked); 1 keeps the picks by ambiguity (ambiguous_margin,
head_base_disagreement), which the learning-curve matrix measured below random anchors on the
noisy sorter and below the least-asked picks on every library (benchmarks/README.md). The pool's
description now says what it is for under either setting. validate_sorting_event accepts the new
reason (a re-runnable function, applied by every migrate).

Revision ID: 0020
Revises: 0019
"""

from heaters_db import schema

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

AMBIGUITY = (
    "0 (the default): after the cold start next_anchors picks, from its random pool "
    "(anchor_pool_size), the clips asked about least often as anchors (reason least_asked). "
    "1: the pool clips whose neighbours the current space is least sure about (ambiguous_margin, "
    "head_base_disagreement), measured worse on the learning-curve benchmark."
)
POOL = (
    "Random clips, not used as anchors recently and not held out, from which next_anchors makes "
    "its picks after the cold start (with anchor_ambiguity 1 each costs one HNSW query, two "
    "with an active head)."
)
POOL_BEFORE = (
    "Random unused clips next_anchors scores for ambiguity per call after the cold start (each "
    "costs one HNSW query, two with an active head)."
)


def upgrade() -> None:
    schema.fetch_one(
        "INSERT INTO heaters_db_settings (name, value, description) VALUES "
        "('anchor_ambiguity', '0', %s) ON CONFLICT (name) DO NOTHING RETURNING name",
        (AMBIGUITY,),
    )
    schema.describe_setting("anchor_pool_size", POOL)


def downgrade() -> None:
    schema.execute("DELETE FROM heaters_db_settings WHERE name = 'anchor_ambiguity'")
    schema.describe_setting("anchor_pool_size", POOL_BEFORE)
