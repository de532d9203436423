"""Active learning: next_anchors() and sorting_candidates(), and the settings that tune them.

next_anchors() says which anchors to ask a person about (k-means medoids at the cold start, then
ambiguous clips, plus a random share); sorting_candidates() what to show next to one. Both are
SECURITY DEFINER and granted to heaters_sorter (0009), like similar_clips.

Revision ID: 0010
Revises: 0009
"""

from heaters_db import schema

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ROLE = "heaters_sorter"
SETTING_NAMES = (
    "anchor_cold_start_events",
    "anchor_random_share",
    "anchor_pool_size",
    "anchor_sample_size",
    "anchor_reuse_after_events",
    "near_duplicate_distance",
)
NEXT_ANCHORS_PICK = dict(
    name="next_anchors_pick",
    arguments="mode text, n integer",
    returns="TABLE (clip_id integer, score double precision, reason text)",
    source_file="active_learning.py",
    entry_point="next_anchors_body",
    call_arguments="mode, n",
    # random() and set_config(): not STABLE.
    volatility="VOLATILE",
)
PUBLIC_FUNCTIONS = (
    "next_anchors(text, integer)",
    "sorting_candidates(integer, text, integer)",
)


def upgrade() -> None:
    schema.run_sql_files("tables/active_learning_settings.sql")
    schema.install_plpython_function(**NEXT_ANCHORS_PICK)
    # Restores hnsw.ef_search when the function returns (it raises it for its neighbour scans).
    schema.execute("ALTER FUNCTION next_anchors_pick(text, integer) SET hnsw.ef_search = 40")
    schema.run_sql_files("functions/next_anchors.sql", "functions/sorting_candidates.sql")
    for signature in PUBLIC_FUNCTIONS:
        schema.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        schema.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {ROLE}")


def downgrade() -> None:
    schema.drop_functions(*PUBLIC_FUNCTIONS, "next_anchors_pick(text, integer)")
    names = ", ".join(f"'{name}'" for name in SETTING_NAMES)
    schema.execute(f"DELETE FROM heaters_db_settings WHERE name IN ({names})")
