"""A role for sorting clients: insert events and call the read functions, nothing else.

`heaters_sorter` is NOLOGIN: grant it to the login role your sorting UI uses
(GRANT heaters_sorter TO my_ui_user). Roles are cluster-wide, so the role is only created when
missing and only dropped by the downgrade if this database created it and nothing else uses it.

Revision ID: 0009
Revises: 0008
"""

from heaters_db import schema

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ROLE = "heaters_sorter"
READ_FUNCTIONS = (
    "similar_clips(integer, text, integer)",
    "similar_to_embedding(vector, text, integer)",
)


def grant_sql() -> str:
    functions = ", ".join(READ_FUNCTIONS)
    return (
        f"GRANT USAGE ON SCHEMA public TO {ROLE};"
        f"GRANT INSERT ON clip_sorting_events TO {ROLE};"
        # INSERT ... RETURNING id needs SELECT on the returned column, and nothing more.
        f"GRANT SELECT (id) ON clip_sorting_events TO {ROLE};"
        f"GRANT USAGE ON SEQUENCE clip_sorting_events_id_seq TO {ROLE};"
        f"GRANT EXECUTE ON FUNCTION {functions} TO {ROLE};"
    )


def upgrade() -> None:
    exists = schema.fetch_one("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)) is not None
    if not exists:
        schema.execute(f"CREATE ROLE {ROLE} NOLOGIN")
    schema.meta_set("created_sorter_role", not exists)
    schema.execute(grant_sql())


def downgrade() -> None:
    functions = ", ".join(READ_FUNCTIONS)
    schema.execute(
        f"REVOKE ALL ON clip_sorting_events FROM {ROLE};"
        f"REVOKE ALL ON SEQUENCE clip_sorting_events_id_seq FROM {ROLE};"
        f"REVOKE ALL ON FUNCTION {functions} FROM {ROLE};"
        f"REVOKE USAGE ON SCHEMA public FROM {ROLE};"
    )
    if schema.meta_get("created_sorter_role", False):
        # Another database of this cluster may still grant it something: then it stays.
        schema.execute(
            f"DO $$ BEGIN DROP ROLE {ROLE}; "
            f"EXCEPTION WHEN dependent_objects_still_exist THEN "
            f"RAISE NOTICE 'role {ROLE} is still used elsewhere in this cluster; kept'; END $$"
        )
