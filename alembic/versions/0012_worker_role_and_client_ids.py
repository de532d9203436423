"""Least-privilege worker role, ids as clients send them, limits on events and clip deletes.

- heaters_worker (NOLOGIN): the daemon's role; its grants are sql/grants/worker_privileges.sql.
  Roles are cluster-wide: created only when missing, dropped by the downgrade only if this
  database created it and nothing else in the cluster still uses it (as 0009 does).
- setting max_candidates_per_event (50): validate_sorting_event refuses larger events.
- enqueue_embed_jobs takes numeric[] ids (integer[], bigint[], numeric[] and untyped literals
  all fit one function; one overload per array type would make the untyped ones ambiguous):
  the integer[] signature is dropped here.
- Re-runnable objects this revision's layer adds (and the downgrade drops, so the 0.1.0 layer
  fits again): integral_argument / integral_array, the double precision overloads of the public
  functions, clip_id_list, sorting_clip_files, active_head_info, the clip-delete guard.

Revision ID: 0012
Revises: 0011
"""

from heaters_db import schema

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ROLE = "heaters_worker"
SETTING = (
    "max_candidates_per_event",
    "50",
    "Most candidate clips one sorting event may list; larger events are refused.",
)
# Objects of today's re-runnable layer that 0.1.0 did not have.
ADDED_FUNCTIONS = (
    "similar_clips(double precision, text, double precision)",
    "similar_to_embedding(vector, text, double precision)",
    "next_anchors(text, double precision)",
    "sorting_candidates(double precision, text, double precision)",
    "apply_head(double precision, vector)",
    "enqueue_embed_jobs(numeric[], boolean, numeric[])",
    "sorting_clip_files(numeric[])",
    "active_head_info(text)",
    "refuse_clip_delete_with_events()",
    "clip_id_list(integer[])",
    "integral_array(numeric[], text)",
    "integral_argument(double precision, text)",
)


def upgrade() -> None:
    exists = schema.fetch_one("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)) is not None
    if not exists:
        schema.execute(f"CREATE ROLE {ROLE} NOLOGIN")
    schema.meta_set("created_worker_role", not exists)
    schema.fetch_one(
        "INSERT INTO heaters_db_settings (name, value, description) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO NOTHING RETURNING name",
        SETTING,
    )
    schema.drop_functions("enqueue_embed_jobs(integer[], boolean, integer[])")


def downgrade() -> None:
    schema.execute("DROP TRIGGER IF EXISTS clips_refuse_delete_with_events ON clips")
    schema.drop_functions(*ADDED_FUNCTIONS)
    schema.execute(
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE};"
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE};"
        f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {ROLE};"
        f"REVOKE USAGE ON SCHEMA public FROM {ROLE};"
        # The 0.1.0 layer re-applied after this re-creates these without SECURITY DEFINER; the
        # ACL survives CREATE OR REPLACE, so the revokes above and the grant back are needed.
        "GRANT EXECUTE ON FUNCTION ensure_variant_index(integer), ensure_head_index(integer) "
        "TO PUBLIC;"
    )
    schema.execute("DELETE FROM heaters_db_settings WHERE name = 'max_candidates_per_event'")
    if schema.meta_get("created_worker_role", False):
        schema.execute(
            f"DO $$ BEGIN DROP ROLE {ROLE}; "
            f"EXCEPTION WHEN dependent_objects_still_exist THEN "
            f"RAISE NOTICE 'role {ROLE} is still used elsewhere in this cluster; kept'; END $$"
        )
    schema.execute("DELETE FROM heaters_db_meta WHERE key = 'created_worker_role'")
