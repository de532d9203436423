"""Projections go with their embedding.

A new trigger pair on `embeddings` (AFTER DELETE, AFTER UPDATE; re-runnable objects:
sql/functions/drop_orphaned_projections.sql, sql/triggers/embeddings_drop_orphaned_projections.sql)
deletes a clip's projected_embeddings rows under every head whose base variant the clip no
longer has a vector of. Before, a deleted embedding's projection stayed: similar_clips kept
answering for the clip and returning it in other clips' results, and next_anchors offered it.
The upgrade removes the rows an earlier version left behind (run once); the downgrade drops the
triggers and the function.

Revision ID: 0022
Revises: 0021
"""

from heaters_db import schema

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.execute(
        "DELETE FROM projected_embeddings pe USING projection_heads p, embedding_variants v "
        "WHERE pe.projection_head_id = p.id AND v.id = p.base_variant_id AND NOT EXISTS ("
        "SELECT 1 FROM embeddings e WHERE e.clip_id = pe.clip_id "
        "AND e.model_name = v.model_name AND e.generation_strategy = v.generation_strategy)"
    )


def downgrade() -> None:
    schema.execute(
        "DROP TRIGGER IF EXISTS embeddings_drop_orphaned_projections_on_delete ON embeddings"
    )
    schema.execute(
        "DROP TRIGGER IF EXISTS embeddings_drop_orphaned_projections_on_update ON embeddings"
    )
    schema.drop_functions("drop_orphaned_projections()")
