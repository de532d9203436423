"""Database-side settings and the embedding variants the database wants.

Revision ID: 0003
Revises: 0002
"""

from heaters_db import schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.run_sql_files(
        "tables/heaters_db_settings.sql",
        "functions/heaters_setting.sql",
        "tables/embedding_variants.sql",
    )


def downgrade() -> None:
    schema.execute("DROP TABLE embedding_variants")
    schema.drop_functions("heaters_setting(text)")
    schema.execute("DROP TABLE heaters_db_settings")
