"""Projection heads, their projected embeddings, and apply_head() in PL/Python.

Revision ID: 0006
Revises: 0005
"""

from heaters_db import schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

APPLY_HEAD = dict(
    name="apply_head",
    arguments="head_id integer, embedding vector",
    returns="vector",
    source_file="apply_head.py",
    entry_point="plpython_body",
    call_arguments="head_id, embedding",
)


def upgrade() -> None:
    had_plpython = (
        schema.fetch_one("SELECT 1 FROM pg_extension WHERE extname = 'plpython3u'") is not None
    )
    schema.execute("CREATE EXTENSION IF NOT EXISTS plpython3u")
    schema.meta_set("created_plpython_extension", not had_plpython)
    schema.run_sql_files(
        "tables/projection_heads.sql",
        "tables/projected_embeddings.sql",
        "functions/sorting_mode.sql",
        "functions/active_head_id.sql",
    )
    schema.install_plpython_function(**APPLY_HEAD)


def downgrade() -> None:
    schema.drop_functions(
        "apply_head(integer, vector)", "active_head_id(text)", "sorting_mode(text)"
    )
    schema.execute("DROP TABLE projected_embeddings")
    schema.execute("DROP TABLE projection_heads")
    if schema.meta_get("created_plpython_extension", False):
        schema.execute("DROP EXTENSION IF EXISTS plpython3u")
