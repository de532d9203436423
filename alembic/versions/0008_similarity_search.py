"""Similarity search: HNSW index builders, similar_clips() and similar_to_embedding().

Revision ID: 0008
Revises: 0007
"""

from heaters_db import schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FUNCTIONS = (
    "similar_to_embedding(vector, text, integer)",
    "similar_clips(integer, text, integer)",
    "search_similar_clips(integer, text, integer)",
    "clip_head_embedding(integer, integer)",
    "clip_base_embedding(integer, integer)",
    "default_variant()",
    "nearest_in_head(integer, vector, integer, integer)",
    "nearest_in_variant(integer, vector, integer, integer)",
    "ensure_head_index(integer)",
    "ensure_variant_index(integer)",
)


def upgrade() -> None:
    schema.run_sql_files(
        "functions/ensure_variant_index.sql",
        "functions/ensure_head_index.sql",
        "functions/nearest_in_variant.sql",
        "functions/nearest_in_head.sql",
        "functions/default_variant.sql",
        "functions/clip_base_embedding.sql",
        "functions/clip_head_embedding.sql",
        "functions/search_similar_clips.sql",
        "functions/similar_clips.sql",
        "functions/similar_to_embedding.sql",
    )
    for signature in (
        "similar_clips(integer, text, integer)",
        "similar_to_embedding(vector, text, integer)",
    ):
        schema.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")


def downgrade() -> None:
    # The HNSW indexes these functions made belong to heaters-db, not to heaters.
    schema.execute(
        "DO $$ DECLARE i record; BEGIN "
        "FOR i IN SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
        "AND indexname LIKE 'embeddings_hnsw_variant_%' LOOP "
        "EXECUTE format('DROP INDEX %I', i.indexname); END LOOP; END $$"
    )
    schema.drop_functions(*FUNCTIONS)
