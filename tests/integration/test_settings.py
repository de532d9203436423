"""heaters_db_settings: a value its readers cannot use is refused when it is written, with a
clear error, and nothing else breaks; migrate names such values stored before the rules."""

from __future__ import annotations

import logging

import psycopg
import pytest

from heaters_db import migrations

READ = "SELECT value FROM heaters_db_settings WHERE name = %s"
SET = "UPDATE heaters_db_settings SET value = %s WHERE name = %s"


def store_event(conn: psycopg.Connection) -> int:
    """A sorting event on three new clips; its id."""
    a, b, c = (
        row[0]
        for row in conn.execute(
            "INSERT INTO clips (clip_identifier) SELECT 'settings-' || gen_random_uuid() "
            "FROM generate_series(1, 3) RETURNING id"
        ).fetchall()
    )
    return conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
        "sorting_mode) VALUES (%s, %s, %s, 'trick_similarity') RETURNING id",
        (a, b, [b, c]),
    ).fetchone()[0]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("holdout_percent", "abc", "must be an integer from 0 to 100, got 'abc'"),
        ("holdout_percent", "101", "must be an integer from 0 to 100, got '101'"),
        ("validation_percent", "15.5", "must be an integer from 0 to 100, got '15.5'"),
        ("retrain_every", "0", "must be an integer of at least 1, got '0'"),
        ("retrain_every", "99999999999", "must be an integer of at least 1"),
        ("job_max_attempts", "", "must be an integer of at least 1, got ''"),
        ("anchor_random_share", "NaN", "must be a number from 0 to 1, got 'NaN'"),
        ("anchor_random_share", "1.5", "must be a number from 0 to 1, got '1.5'"),
        ("near_duplicate_distance", "Infinity", "must be a number from 0 to 2"),
        ("implicit_negative_weight", "-0.1", "must be a number of at least 0, got '-0.1'"),
        ("hnsw_ef_search", "5000", "must be an integer from 1 to 1000, got '5000'"),
        ("head_max_epochs", None, "must be an integer of at least 0, got NULL"),
    ],
)
def test_a_value_its_readers_cannot_use_is_refused(
    conn: psycopg.Connection, name: str, value: str | None, message: str
) -> None:
    before = conn.execute(READ, (name,)).fetchone()
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        conn.execute(SET, (value, name))
    assert f'heaters-db setting "{name}" {message}' in str(refused.value)
    assert refused.value.diag.message_detail  # the setting's description says what it does
    assert conn.execute(READ, (name,)).fetchone() == before
    # What a bad value used to break keeps working: sorting events are still stored.
    assert store_event(conn) > 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("holdout_percent", "0"),
        ("holdout_percent", "100"),
        ("validation_percent", " 40 "),
        ("anchor_random_share", "1e-09"),  # str(1e-9): what a Python client sends
        ("anchor_random_share", "1"),
        ("near_duplicate_distance", ".0002"),
        ("retrain_every", "1000000"),
        ("hnsw_ef_search", "1000"),
    ],
)
def test_values_within_the_rule_are_stored(conn: psycopg.Connection, name: str, value: str):
    conn.execute(SET, (value, name))
    assert conn.execute(READ, (name,)).fetchone() == (value,)


def test_a_setting_heaters_db_reads_cannot_be_deleted_or_renamed(conn: psycopg.Connection):
    for statement in (
        "DELETE FROM heaters_db_settings WHERE name = 'holdout_percent'",
        "UPDATE heaters_db_settings SET name = 'holdout_pct' WHERE name = 'holdout_percent'",
    ):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="holdout_percent"):
            conn.execute(statement)
    # TRUNCATE fires no row trigger: it has its own refusal.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot be truncated"):
        conn.execute("TRUNCATE heaters_db_settings")
    assert conn.execute(READ, ("holdout_percent",)).fetchone() is not None
    assert store_event(conn) > 0
    # A row of an operator's own, without a rule, takes any text and may go.
    conn.execute(
        "INSERT INTO heaters_db_settings (name, value, description) "
        "VALUES ('site_note', 'anything at all', 'an operator''s own row')"
    )
    conn.execute("UPDATE heaters_db_settings SET value = '' WHERE name = 'site_note'")
    conn.execute("DELETE FROM heaters_db_settings WHERE name = 'site_note'")


def test_every_seeded_setting_has_a_rule_its_default_meets(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT name, value_kind, setting_value_problem(value, value_kind, minimum, maximum) "
        "FROM heaters_db_settings ORDER BY name"
    ).fetchall()
    assert [name for name, kind, _ in rows if kind is None] == []
    assert [(name, problem) for name, _, problem in rows if problem is not None] == []


def test_migrate_keeps_and_names_a_value_stored_before_the_rules(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A value an older version let in stays as the operator wrote it (migrate never rewrites
    one); migrate warns about it, a change of its description alone still goes through, and the
    next write of the value must meet the rule. The downgrade drops the rules."""
    migrations.migrate(db_url, "0023")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(SET, ("fifteen", "validation_percent"))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="heaters_db.migrations"):
            migrations.migrate(db_url)
        assert conn.execute(READ, ("validation_percent",)).fetchone() == ("fifteen",)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [
            "setting validation_percent must be an integer from 0 to 100, got 'fifteen': set a "
            "valid value (UPDATE heaters_db_settings SET value = ... WHERE name = "
            "'validation_percent')"
        ]
        conn.execute(
            "UPDATE heaters_db_settings SET description = 'reworded' "
            "WHERE name = 'validation_percent'"
        )
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute(SET, ("sixteen", "validation_percent"))
        conn.execute(SET, ("15", "validation_percent"))
        migrations.migrate(db_url, "0023")
        conn.execute(SET, ("fifteen", "validation_percent"))  # no rules at 0023
        assert conn.execute(READ, ("validation_percent",)).fetchone() == ("fifteen",)
