"""A base vector that is all zeros projects to all zeros under every head.

apply_head used to map it to the head's bias: a point like any other in the head space, which
next_anchors offered first (a screen nobody could answer: sorting_candidates refuses a zero
anchor) and similar_clips served, while the base space leaves such a clip out of both. The
re-runnable apply_head / apply_head_batch now return zeros for it (plpython/apply_head.py);
this revision rewrites the projections stored under the old rule, for clips and for moment
windows. The downgrade leaves them: zeros are what the old functions' readers skip as well.

Revision ID: 0030
Revises: 0029
"""

from heaters_db import schema

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.execute(
        """
        UPDATE projected_embeddings p
        SET embedding = array_fill(0::real, ARRAY[vector_dims(p.embedding)])::vector
        FROM projection_heads h, embedding_variants v, embeddings e
        WHERE h.id = p.projection_head_id AND v.id = h.base_variant_id
          AND e.clip_id = p.clip_id AND e.model_name = v.model_name
          AND e.generation_strategy = v.generation_strategy
          AND vector_norm(e.embedding) = 0 AND vector_norm(p.embedding) <> 0
        """
    )
    schema.execute(
        """
        UPDATE projected_moment_embeddings p
        SET embedding = array_fill(0::real, ARRAY[vector_dims(p.embedding)])::vector
        FROM moment_embeddings m
        WHERE m.id = p.moment_embedding_id
          AND vector_norm(m.embedding) = 0 AND vector_norm(p.embedding) <> 0
        """
    )


def downgrade() -> None:
    """Nothing to undo (see the docstring)."""
