"""pgvector, heaters-db's bookkeeping table, and heaters' tables where they are missing.

On an existing heaters database source_videos, clips and embeddings already exist and are left
exactly as they are; on an empty one they are created in heaters' shape. heaters_db_meta records
what this revision created, so the downgrade removes only that.

Revision ID: 0001
Revises:
"""

from heaters_db import schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

HEATERS_TABLES = ("source_videos", "clips", "embeddings")  # in dependency order


def upgrade() -> None:
    had_vector = schema.fetch_one("SELECT 1 FROM pg_extension WHERE extname = 'vector'") is not None
    schema.execute("CREATE EXTENSION IF NOT EXISTS vector")
    schema.run_sql_files("tables/heaters_db_meta.sql")
    created = []
    for table in HEATERS_TABLES:
        if not schema.table_exists(table):
            schema.run_sql_files(f"tables/{table}.sql")
            created.append(table)
    schema.meta_set("created_heaters_tables", created)
    schema.meta_set("created_vector_extension", not had_vector)


def downgrade() -> None:
    created = schema.meta_get("created_heaters_tables", [])
    drop_vector = schema.meta_get("created_vector_extension", False)
    for table in reversed(HEATERS_TABLES):
        if table in created:
            schema.execute(f"DROP TABLE {table}")
    schema.execute("DROP TABLE heaters_db_meta")
    if drop_vector:
        schema.execute("DROP EXTENSION IF EXISTS vector")
