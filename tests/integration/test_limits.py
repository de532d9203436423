"""Limits with clear messages: candidates per event, refusal messages that name a few ids and
the count, zero/NaN query vectors, deleting clips that sorting events name, a single-row read
that came back empty."""

from __future__ import annotations

import psycopg
import pytest

from heaters_db.db import one_row
from heaters_db.errors import HeatersError
from tests.integration.test_security import library  # noqa: F401  (fixture)
from tests.integration.test_sorting_events import insert_event


@pytest.fixture
def clips_60(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute(
        "INSERT INTO clips (clip_identifier) SELECT 'c' || i FROM generate_series(1, 60) i"
    )
    return conn


def event_with(conn: psycopg.Connection, candidates: list[int]) -> int:
    return insert_event(
        conn,
        anchor_clip_id=1,
        selected_clip_id=candidates[0],
        rejected_clip_ids=[],
        candidate_clip_ids=candidates,
    )


def test_candidates_per_event_are_limited_by_a_setting(clips_60: psycopg.Connection) -> None:
    conn = clips_60
    assert conn.execute(
        "SELECT value FROM heaters_db_settings WHERE name = 'max_candidates_per_event'"
    ).fetchone() == ("50",)
    assert event_with(conn, list(range(2, 52))) >= 1  # 50: accepted
    with pytest.raises(
        psycopg.errors.CheckViolation,
        match=r"51 candidates, at most 50 per event \(setting max_candidates_per_event\)",
    ):
        event_with(conn, list(range(2, 53)))
    conn.execute(
        "UPDATE heaters_db_settings SET value = '3' WHERE name = 'max_candidates_per_event'"
    )
    assert event_with(conn, [2, 3, 4]) >= 1
    with pytest.raises(psycopg.errors.CheckViolation, match="4 candidates, at most 3"):
        event_with(conn, [2, 3, 4, 5])


def test_refusals_name_a_few_ids_and_the_count(clips_60: psycopg.Connection) -> None:
    conn = clips_60
    conn.execute(
        "UPDATE heaters_db_settings SET value = '20000' WHERE name = 'max_candidates_per_event'"
    )
    unknown = list(range(100_001, 110_001))
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
        event_with(conn, [2, *unknown])
    message = refused.value.diag.message_primary
    assert message == (
        "sorting event refused: unknown clip ids {100001,100002,100003,100004,100005,...} "
        "(10000 ids)"
    )
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_event(conn, selected_clip_id=60, candidate_clip_ids=list(range(2, 40)))
    message = refused.value.diag.message_primary
    assert message == (
        "sorting event refused: selected clip 60 is not among the candidates {2,3,4,5,6,...} "
        "(38 ids)"
    )
    # Short lists are still shown whole.
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match=r"unknown clip ids \{997,998\}\n"):
        event_with(conn, [2, 998, 997])


def test_zero_and_nan_query_vectors_are_refused(
    conn: psycopg.Connection,
    library: int,  # noqa: F811
) -> None:
    for mode in ("trick", "spot"):  # with an active head, and the base space
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="query vector is all zeros"):
            conn.execute("SELECT * FROM similar_to_embedding('[0,0,0]', %s)", (mode,))
    with pytest.raises(psycopg.errors.DataException, match="NaN not allowed in vector"):
        conn.execute("SELECT * FROM similar_to_embedding('[NaN,1,1]', 'spot')")
    # A stored zero embedding is refused as a query too (similar_clips goes the same way).
    conn.execute("UPDATE embeddings SET embedding = '[0,0,0]' WHERE clip_id = 1")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="query vector is all zeros"):
        conn.execute("SELECT * FROM similar_clips(1, 'spot')")
    assert len(conn.execute("SELECT * FROM similar_clips(2, 'spot', 2)").fetchall()) == 2


def test_deleting_clips_that_events_name_is_refused_unless_asked_for(
    clips_60: psycopg.Connection,
) -> None:
    conn = clips_60
    event_with(conn, list(range(2, 10)))
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
        conn.execute("DELETE FROM clips WHERE id < 20")
    assert refused.value.diag.message_primary == (
        "clip delete refused: sorting events reference clips {1,2,3,4,5,...} (9 ids)"
    )
    assert "heaters_db.allow_clip_delete" in refused.value.diag.message_hint
    assert conn.execute("SELECT count(*) FROM clips").fetchone() == (60,)
    conn.execute("DELETE FROM clips WHERE id >= 20")  # no event names them
    assert conn.execute("SELECT count(*) FROM clips").fetchone() == (19,)
    with conn.transaction():
        conn.execute("SET LOCAL heaters_db.allow_clip_delete = 'on'")
        conn.execute("DELETE FROM clips WHERE id = 5")
    assert conn.execute("SELECT count(*) FROM clips").fetchone() == (18,)
    # The setting was local to that transaction: the guard is back.
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match=r"reference clips \{2\}"):
        conn.execute("DELETE FROM clips WHERE id = 2")
    # Moving a named clip to another id leaves the events naming nothing, as a delete would.
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
        conn.execute("UPDATE clips SET id = id + 1000 WHERE id IN (2, 3)")
    assert refused.value.diag.message_primary == (
        "clip id change refused: sorting events reference clips {2,3}"
    )
    conn.execute("UPDATE clips SET clip_identifier = clip_identifier || '!' WHERE id < 20")
    conn.execute("UPDATE clips SET id = 5000 WHERE id = 12")  # no event names it
    # TRUNCATE fires no DELETE trigger: it has its own guard, and the same way through.
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
        conn.execute("TRUNCATE clips CASCADE")
    assert refused.value.diag.message_primary == (
        "clip truncate refused: sorting events reference clips (1 events)"
    )
    assert conn.execute("SELECT count(*) FROM clips").fetchone() == (18,)
    with conn.transaction():
        conn.execute("SET LOCAL heaters_db.allow_clip_delete = 'on'")
        conn.execute("TRUNCATE clips CASCADE")
    assert conn.execute("SELECT count(*) FROM clips").fetchone() == (0,)


def test_a_statement_that_must_return_a_row_and_did_not_is_named(conn: psycopg.Connection):
    # one_row() guards the daemon's single-row reads (an aggregate, INSERT ... RETURNING): if
    # one ever comes back empty, the operator reads which statement, not a TypeError on None.
    assert one_row(conn.execute("SELECT 41 + 1"), "answer") == (42,)
    with pytest.raises(HeatersError, match=r"^active_head: expected one row"):
        one_row(conn.execute("SELECT 1 WHERE false"), "active_head")
