"""An upgraded database ends exactly where a fresh install does.

Each released schema is a pg_dump of a database that release's own code migrated
(tests/fixtures/baseline-<release>-*.sql, rebuilt by tests.support.release_baseline). Restored,
migrated to head, its catalog — functions with their bodies, views, triggers, indexes,
constraints, columns, grants — must equal a fresh install's; a downgrade to the release's last
revision must give the release's catalog back, and an upgrade after it head's again. `migrate`
at head repairs what was changed by hand, and `--check` reports it without changing anything.
"""

from __future__ import annotations

import psycopg
import pytest

from heaters_db import migrations
from heaters_db.catalog import schema_catalog
from tests.integration.test_migrations import cli
from tests.support.heaters_schema import create_heaters_schema
from tests.support.release_baseline import RELEASES, load_baseline

# Rows heaters-db seeds and later revisions may add to: upgraded and fresh must agree on them.
SEEDED_ROWS = {
    "heaters_db_settings": (
        "SELECT row_to_json(t)::jsonb - 'inserted_at' - 'updated_at' FROM heaters_db_settings t "
        "ORDER BY name"
    ),
    "embedding_variants": (
        "SELECT row_to_json(t)::jsonb - 'inserted_at' - 'updated_at' FROM embedding_variants t "
        "ORDER BY id"
    ),
}
# The last revision of each release (what a database at that release has in its version table).
RELEASE_REVISIONS = {
    release: revision for revision, release in migrations.RELEASE_OF_REVISION.items()
}


def state(url: str) -> dict:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = {table: conn.execute(sql).fetchall() for table, sql in SEEDED_ROWS.items()}
        return {"catalog": schema_catalog(conn), "rows": rows}


def assert_same(actual: dict, expected: dict) -> None:
    """Like ==, but a failure names the objects that differ instead of printing two catalogs."""
    differences = [
        (kind, name, actual["catalog"][kind].get(name), expected["catalog"][kind].get(name))
        for kind in expected["catalog"]
        for name in actual["catalog"][kind].keys() | expected["catalog"][kind].keys()
        if actual["catalog"][kind].get(name) != expected["catalog"][kind].get(name)
    ]
    assert differences == []
    assert actual["rows"] == expected["rows"]


@pytest.fixture(params=["empty", "heaters"])
def kind(request) -> str:
    return request.param


def fresh_install(url: str, kind: str) -> None:
    if kind == "heaters":
        with psycopg.connect(url, autocommit=True) as conn:
            create_heaters_schema(conn)
    migrations.upgrade(url)


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_upgrade_from_release_equals_fresh_install_and_round_trips(
    release: str, kind: str, empty_db_url: str, other_empty_db_url: str
) -> None:
    fresh_url = empty_db_url
    fresh_install(fresh_url, kind)
    fresh = state(fresh_url)

    upgraded_url = other_empty_db_url
    load_baseline(upgraded_url, release, kind)
    assert migrations.current_revision(upgraded_url) == RELEASE_REVISIONS[release]
    released = state(upgraded_url)

    migrations.migrate(upgraded_url, "head")
    assert migrations.current_revision(upgraded_url) == migrations.head_revision()
    assert_same(state(upgraded_url), fresh)

    migrations.migrate(upgraded_url, RELEASE_REVISIONS[release])
    assert_same(state(upgraded_url), released)

    migrations.migrate(upgraded_url, "head")
    assert_same(state(upgraded_url), fresh)
    assert migrations.check(upgraded_url) == ([], [])


def test_migrate_at_head_repairs_objects_changed_by_hand(db_url: str) -> None:
    assert migrations.check(db_url) == ([], [])
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION sorting_mode(mode text) RETURNS text LANGUAGE sql "
            "IMMUTABLE SET search_path = public, pg_temp AS $$ SELECT 'trick_similarity' $$"
        )
        conn.execute("GRANT EXECUTE ON FUNCTION apply_head(integer, vector) TO PUBLIC")
        conn.execute("CREATE OR REPLACE TRIGGER clips_enqueue_embed_jobs_on_insert AFTER INSERT ON clips FOR EACH STATEMENT EXECUTE FUNCTION enqueue_clip_embed_jobs()")  # fmt: skip
        changed = schema_catalog(conn)

    pending, drift = migrations.check(db_url)
    assert pending == []
    assert {str(change) for change in drift} == {
        "function sorting_mode(text) changed",
        "function apply_head(integer,vector) changed",
        "trigger clips.clips_enqueue_embed_jobs_on_insert changed",
    }
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert schema_catalog(conn) == changed, "--check must not change anything"

    repaired = migrations.migrate(db_url, "head")
    assert {str(change) for change in repaired} == {str(change) for change in drift}
    assert migrations.check(db_url) == ([], [])
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT sorting_mode('spot')").fetchone() == ("spot_similarity",)
        assert not conn.execute(
            "SELECT has_function_privilege('public', 'apply_head(integer, vector)', 'EXECUTE')"
        ).fetchone()[0]


def test_migrate_cli_says_what_it_changes_and_check_exits_1_on_drift(db_url: str, tmp_path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION sorting_mode(mode text) RETURNS text LANGUAGE sql "
            "IMMUTABLE SET search_path = public, pg_temp AS $$ SELECT 'trick_similarity' $$"
        )
    checked = cli("migrate", "--check", url=db_url, home=tmp_path)
    assert checked.returncode == 1, checked.stderr
    assert "function sorting_mode(text) changed (would be re-applied)" in checked.stdout

    migrated = cli("migrate", url=db_url, home=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "function sorting_mode(text) changed" in migrated.stdout

    again = cli("migrate", url=db_url, home=tmp_path)
    assert "nothing to change" in again.stdout
    clean = cli("migrate", "--check", url=db_url, home=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no drift" in clean.stdout
