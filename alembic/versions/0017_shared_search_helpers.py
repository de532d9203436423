"""Shared helpers of the index and search functions (no table changes).

The four ensure_*_index functions, head_/variant_index_definition, nearest_in_variant /
nearest_in_head, the search_similar_* bodies and the "not embedded yet" errors used to repeat
their lookups, checks and index shape; they now delegate to eight small functions, created
(like every function) by the re-runnable layer (sql/functions/, sql/rerunnable.txt). No
signature of an existing function changes, so the upgrade has nothing to run; the downgrade
drops the helpers, so the previous catalog comes back exactly.

Revision ID: 0017
Revises: 0016
"""

from heaters_db import schema

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

FUNCTIONS = (
    "required(anyelement, text, text)",
    "checked_k(integer)",
    "embedding_variant_with_dim(integer)",
    "projection_head_by_id(integer)",
    "hnsw_index_definition(text, text, integer, text)",
    "create_index_from_definition(text, text)",
    "nearest_clips_in_index(text, text, text, integer, text, vector, integer, integer)",
    "raise_not_embedded(integer, integer, text)",
)


def upgrade() -> None:
    # Nothing run-once: the helpers are re-runnable objects, applied after the revisions.
    pass


def downgrade() -> None:
    schema.drop_functions(*FUNCTIONS)
