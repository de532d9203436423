"""clip_sorting_events: every refused event class, append-only, NOTIFY, and the training views."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from heaters_db.db import connect

VALID_EVENT: dict[str, Any] = {
    "anchor_clip_id": 1,
    "selected_clip_id": 2,
    "rejected_clip_ids": [3],
    "candidate_clip_ids": [2, 3, 4],
    "sorting_mode": "trick_similarity",
    "response_time_ms": 1200,
    "anchor_reason": "manual",
    "candidate_sources": None,
}


def insert_event(conn: psycopg.Connection, **overrides: Any) -> int:
    event = VALID_EVENT | overrides
    return conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, rejected_clip_ids, "
        "candidate_clip_ids, sorting_mode, response_time_ms, anchor_reason, candidate_sources) "
        "VALUES (%s, %s, %s::integer[], %s::integer[], %s, %s, %s, %s::text[]) RETURNING id",
        (
            event["anchor_clip_id"],
            event["selected_clip_id"],
            event["rejected_clip_ids"],
            event["candidate_clip_ids"],
            event["sorting_mode"],
            event["response_time_ms"],
            event["anchor_reason"],
            event["candidate_sources"],
        ),
    ).fetchone()[0]


@pytest.fixture
def events_conn(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The test database with clips 1..6 (no video, so no embed jobs)."""
    conn.execute(
        "INSERT INTO clips (clip_identifier) SELECT 'clip' || i FROM generate_series(1, 6) i"
    )
    yield conn


REFUSED = [
    ("unknown anchor reason", {"anchor_reason": "because"}, "anchor_reason must be manual"),
    ("NULL anchor reason", {"anchor_reason": None}, "anchor_reason must be manual"),
    (
        "one source short",
        {"candidate_sources": ["nearest", "control"]},
        "one source per candidate (3 candidates, 2 sources)",
    ),
    (
        "nested sources",
        {"candidate_sources": [["nearest", "control"], ["control", "nearest"]]},
        "candidate_sources must be a one-dimensional array",
    ),
    (
        "unknown source",
        {"candidate_sources": ["nearest", "control", "magic"]},
        "unknown candidate source",
    ),
    (
        "evaluation without sources",
        {"anchor_reason": "evaluation"},
        "an evaluation screen's candidates must all come from evaluation_candidates",
    ),
    (
        "evaluation with head candidates",
        {
            "anchor_reason": "evaluation",
            "candidate_sources": ["evaluation_base", "nearest", "evaluation_random"],
        },
        "an evaluation screen's candidates must all come from evaluation_candidates",
    ),
    ("unknown anchor", {"anchor_clip_id": 999}, "unknown clip ids {999}"),
    (
        "unknown candidate",
        {"candidate_clip_ids": [2, 3, 998, 997]},
        "unknown clip ids {997,998}",
    ),
    ("selected not shown", {"selected_clip_id": 5}, "selected clip 5 is not among the candidates"),
    (
        "anchor shown",
        {"candidate_clip_ids": [1, 2, 3]},
        "anchor clip 1 is among its own candidates",
    ),
    (
        "duplicate candidates",
        {"candidate_clip_ids": [2, 3, 3, 4]},
        "duplicate clip ids in candidate_clip_ids",
    ),
    (
        "duplicate rejected",
        {"rejected_clip_ids": [3, 3]},
        "duplicate clip ids in rejected_clip_ids",
    ),
    (
        "rejected not shown",
        {"rejected_clip_ids": [3, 5]},
        "rejected clips {5} are not among the candidates",
    ),
    (
        "selected also rejected",
        {"rejected_clip_ids": [2, 3]},
        "selected clip 2 is also listed as rejected",
    ),
    ("bad mode", {"sorting_mode": "trick_similarty"}, "got 'trick_similarty'"),
    ("no mode", {"sorting_mode": None}, "sorting_mode must be trick_similarity or spot_similarity"),
    ("negative time", {"response_time_ms": -5}, "response_time_ms must not be negative, got -5"),
    (
        "nothing shown",
        {"candidate_clip_ids": [], "rejected_clip_ids": [], "selected_clip_id": None},
        "candidate_clip_ids is empty",
    ),
    ("NULL candidate", {"candidate_clip_ids": [2, None, 3]}, "must not contain NULL"),
    ("NULL rejected", {"rejected_clip_ids": [None]}, "must not contain NULL"),
    ("NULL anchor", {"anchor_clip_id": None}, "anchor_clip_id is NULL"),
    (
        "nested candidates",
        {"candidate_clip_ids": [[2, 3], [4, 5]], "rejected_clip_ids": []},
        "must be one-dimensional arrays",
    ),
]


def test_every_bad_event_is_refused_with_a_message_naming_the_problem(
    events_conn: psycopg.Connection,
) -> None:
    # One database for all classes (each refusal rolls back its own statement).
    for label, overrides, message in REFUSED:
        with pytest.raises(psycopg.errors.IntegrityError) as refused:
            insert_event(events_conn, **overrides)
        text = refused.value.diag.message_primary or ""
        assert text.startswith("sorting event refused: "), (label, text)
        assert message in text, (label, text)
    assert events_conn.execute("SELECT count(*) FROM clip_sorting_events").fetchone()[0] == 0


def test_refusals_carry_sqlstates(events_conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        insert_event(events_conn, anchor_clip_id=999)
    with pytest.raises(psycopg.errors.CheckViolation):
        insert_event(events_conn, selected_clip_id=5)


def test_valid_events_are_accepted(events_conn: psycopg.Connection) -> None:
    first = insert_event(events_conn)
    none_similar = insert_event(
        events_conn, selected_clip_id=None, rejected_clip_ids=[2], sorting_mode="spot_similarity"
    )
    no_rejects = insert_event(events_conn, rejected_clip_ids=[], response_time_ms=None)
    null_rejects = insert_event(events_conn, rejected_clip_ids=None)  # said as '{}' says it
    rows = events_conn.execute(
        "SELECT id, selected_clip_id, rejected_clip_ids, sorting_mode, inserted_at = updated_at "
        "FROM clip_sorting_events ORDER BY id"
    ).fetchall()
    assert rows == [
        (first, 2, [3], "trick_similarity", True),
        (none_similar, None, [2], "spot_similarity", True),
        (no_rejects, 2, [], "trick_similarity", True),
        (null_rejects, 2, [], "trick_similarity", True),
    ]


def test_inserted_at_cannot_be_backdated(events_conn: psycopg.Connection) -> None:
    event_id = events_conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
        "sorting_mode, inserted_at) VALUES (1, 2, '{2,3}', 'trick_similarity', '2001-01-01') "
        "RETURNING id"
    ).fetchone()[0]
    (recent,) = events_conn.execute(
        "SELECT inserted_at > now() - interval '1 hour' FROM clip_sorting_events WHERE id = %s",
        (event_id,),
    ).fetchone()
    assert recent


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE clip_sorting_events SET selected_clip_id = 4",
        "DELETE FROM clip_sorting_events",
        "TRUNCATE clip_sorting_events",
    ],
)
def test_events_are_append_only(events_conn: psycopg.Connection, statement: str) -> None:
    insert_event(events_conn)
    operation = statement.split()[0]
    with pytest.raises(
        psycopg.errors.InsufficientPrivilege, match=f"append-only: {operation} refused"
    ):
        events_conn.execute(statement)
    assert events_conn.execute(
        "SELECT count(*), min(selected_clip_id) FROM clip_sorting_events"
    ).fetchone() == (1, 2)


def test_insert_notifies_listeners_once_per_statement(
    events_conn: psycopg.Connection, db_url: str
) -> None:
    with connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN heaters_db_sorting_events")
        first = insert_event(events_conn)
        events_conn.execute(
            "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
            "sorting_mode) SELECT 5, 2, '{2,3}', m FROM unnest("
            "ARRAY['spot_similarity', 'trick_similarity', 'spot_similarity']) m"
        )
        notes = list(listener.notifies(timeout=5, stop_after=2))
    assert [n.channel for n in notes] == ["heaters_db_sorting_events"] * 2
    payloads = [json.loads(n.payload) for n in notes]
    assert payloads[0] == {"count": 1, "max_event_id": first, "modes": ["trick_similarity"]}
    assert payloads[1]["count"] == 3
    assert payloads[1]["max_event_id"] == first + 3
    assert sorted(payloads[1]["modes"]) == ["spot_similarity", "trick_similarity"]


def test_sorting_screens_and_triplets(events_conn: psycopg.Connection) -> None:
    chosen = insert_event(events_conn)  # anchor 1, chose 2, rejected 3, also shown 4
    none_similar = insert_event(
        events_conn,
        anchor_clip_id=5,
        selected_clip_id=None,
        rejected_clip_ids=[2],
        candidate_clip_ids=[2, 3, 6],
        sorting_mode="spot_similarity",
    )
    screens = events_conn.execute(
        "SELECT event_id, sorting_mode, anchor_clip_id, selected_clip_id, candidate_clip_ids, "
        "rejected_clip_ids, implicit_negative_clip_ids, response_time_ms "
        "FROM sorting_screens ORDER BY event_id"
    ).fetchall()
    assert screens == [
        (chosen, "trick_similarity", 1, 2, [2, 3, 4], [3], [4], 1200),
        (none_similar, "spot_similarity", 5, None, [2, 3, 6], [2], [3, 6], 1200),
    ]
    triplets_sql = (
        "SELECT event_id, sorting_mode, anchor_clip_id, positive_clip_id, negative_clip_id, kind, "
        "weight FROM sorting_triplets ORDER BY event_id, negative_clip_id"
    )
    assert events_conn.execute(triplets_sql).fetchall() == [
        (chosen, "trick_similarity", 1, 2, 3, "hard", 1.0),
        (chosen, "trick_similarity", 1, 2, 4, "implicit", 0.3),
        (none_similar, "spot_similarity", 5, None, 2, "hard", 1.0),
        (none_similar, "spot_similarity", 5, None, 3, "implicit", 0.3),
        (none_similar, "spot_similarity", 5, None, 6, "implicit", 0.3),
    ]
    # The implicit weight is a setting; the split is the event's, in both views.
    events_conn.execute(
        "UPDATE heaters_db_settings SET value = '0.5' WHERE name = 'implicit_negative_weight'"
    )
    weights = events_conn.execute(
        "SELECT kind, weight FROM sorting_triplets GROUP BY kind, weight ORDER BY kind"
    ).fetchall()
    assert weights == [("hard", 1.0), ("implicit", 0.5)]
    mismatched = events_conn.execute(
        "SELECT count(*) FROM sorting_triplets t JOIN sorting_screens s USING (event_id) "
        "WHERE t.split <> s.split"
    ).fetchone()[0]
    assert mismatched == 0


def _many_anchor_events(conn: psycopg.Connection, first: int, last: int, reason: str) -> None:
    """One event per anchor clip first..last (clips 1..6 are the candidates)."""
    conn.execute(
        "INSERT INTO clips (clip_identifier) SELECT 'more' || i FROM generate_series(7, %s::integer) i",
        (last,),
    )
    conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
        "sorting_mode, anchor_reason) SELECT a, 2, '{2,3,4}', 'trick_similarity', %s "
        "FROM generate_series(%s::integer, %s::integer) a",
        (reason, first, last),
    )


def test_split_is_grouped_by_anchor_and_near_the_settings(
    events_conn: psycopg.Connection, db_url: str
) -> None:
    _many_anchor_events(events_conn, 7, 2006, "manual")
    # Every anchor's later events inherit its split.
    events_conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
        "sorting_mode, anchor_reason) SELECT a, 3, '{2,3,4}', 'trick_similarity', 'random' "
        "FROM generate_series(7, 2006) a"
    )
    split_sql = "SELECT event_id, split FROM sorting_screens ORDER BY event_id"
    first = events_conn.execute(split_sql).fetchall()
    per_anchor = events_conn.execute(
        "SELECT count(DISTINCT split) FROM sorting_screens GROUP BY anchor_clip_id"
    ).fetchall()
    assert {count for (count,) in per_anchor} == {1}
    anchors = events_conn.execute(
        "SELECT split, count(*) FROM sorting_anchor_splits GROUP BY split"
    ).fetchall()
    share = {split: count / 2000 for split, count in anchors}
    # manual anchors: holdout_percent 20, then validation_percent 15 (~4 sigma at n = 2000)
    assert 0.165 <= share["holdout"] <= 0.235, share
    assert 0.12 <= share["validation"] <= 0.18, share
    with psycopg.connect(db_url) as other:  # info.dsn leaves the password out
        assert other.execute(split_sql).fetchall() == first
    assert events_conn.execute(
        "SELECT count(*) FROM sorting_screens WHERE split <> sorting_event_split(event_id)"
    ).fetchone() == (0,)


def test_changing_the_settings_never_moves_a_past_event(events_conn: psycopg.Connection) -> None:
    _many_anchor_events(events_conn, 7, 406, "manual")
    split_sql = "SELECT event_id, split FROM sorting_screens ORDER BY event_id"
    before = events_conn.execute(split_sql).fetchall()
    assert {split for _, split in before} == {"train", "validation", "holdout"}
    for name, value in (("holdout_percent", "0"), ("validation_percent", "60")):
        events_conn.execute(
            "UPDATE heaters_db_settings SET value = %s WHERE name = %s", (value, name)
        )
    assert events_conn.execute(split_sql).fetchall() == before
    # New anchors follow the new settings; a known anchor keeps its split.
    events_conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
        "sorting_mode) SELECT a, 2, '{2,3,4}', 'trick_similarity' FROM generate_series(7, 406) a"
    )
    after = dict(events_conn.execute(split_sql).fetchall())
    assert all(after[event] == split for event, split in before)
    repeated = events_conn.execute(
        "SELECT count(DISTINCT split) FROM sorting_screens GROUP BY anchor_clip_id"
    ).fetchall()
    assert {count for (count,) in repeated} == {1}


def test_evaluation_anchors_are_held_out_and_informative_ones_never(
    events_conn: psycopg.Connection,
) -> None:
    events_conn.execute(
        "INSERT INTO clips (clip_identifier) SELECT 'more' || i FROM generate_series(7, 606) i"
    )
    events_conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
        "sorting_mode, anchor_reason, candidate_sources) "
        "SELECT a, 2, '{2,3,4}', 'trick_similarity', 'evaluation', "
        "'{evaluation_base,evaluation_random,evaluation_random}' FROM generate_series(7, 306) a"
    )
    events_conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
        "sorting_mode, anchor_reason, candidate_sources) "
        "SELECT a, 2, '{2,3,4}', 'trick_similarity', 'ambiguous_margin', "
        "'{nearest,nearest,control}' FROM generate_series(307, 606) a"
    )
    rows = events_conn.execute(
        "SELECT evaluation, split, count(*) FROM sorting_screens GROUP BY 1, 2"
    ).fetchall()
    counts = {(evaluation, split): n for evaluation, split, n in rows}
    assert counts[(True, "holdout")] == 300
    assert not any(split == "holdout" for evaluation, split in counts if not evaluation)
    assert counts[(False, "validation")] > 0 and counts[(False, "train")] > 0
    sources = events_conn.execute(
        "SELECT DISTINCT anchor_reason, candidate_sources FROM sorting_screens "
        "WHERE anchor_clip_id IN (7, 307) ORDER BY 1"
    ).fetchall()
    assert sources == [
        ("ambiguous_margin", ["nearest", "nearest", "control"]),
        ("evaluation", ["evaluation_base", "evaluation_random", "evaluation_random"]),
    ]


def test_an_explicit_event_id_is_replaced_and_cannot_stop_retraining(
    events_conn: psycopg.Connection,
) -> None:
    first = insert_event(events_conn)
    chosen = events_conn.execute(
        "INSERT INTO clip_sorting_events (id, anchor_clip_id, selected_clip_id, "
        "candidate_clip_ids, sorting_mode) VALUES (2000000000, 1, 2, '{2,3,4}', "
        "'trick_similarity') RETURNING id"
    ).fetchone()[0]
    assert chosen == first + 1, "the id must come from the sequence"
    events_conn.execute("UPDATE heaters_db_settings SET value = '3' WHERE name = 'retrain_every'")
    insert_event(events_conn)
    assert events_conn.execute(
        "SELECT count(*) FROM pipeline_jobs WHERE kind = 'train_head'"
    ).fetchone() == (1,), "three events since the watermark 0 must enqueue a training"
    assert events_conn.execute("SELECT max(id) FROM clip_sorting_events").fetchone()[0] < 1000


def test_a_garbled_train_job_never_refuses_events(events_conn: psycopg.Connection) -> None:
    """The retrain watermark reads every finished train_head job of the mode: a hand-edited one
    whose numbers are text or past int4 is ignored (it made every event INSERT of the mode fail
    on the cast), and should enqueueing fail anyway the events are stored, with a WARNING."""
    events_conn.execute(
        "INSERT INTO pipeline_jobs (kind, mode, status, payload, result) VALUES "
        "('train_head', 'trick_similarity', 'dead', '{\"events_through\": \"abc\"}', NULL), "
        "('train_head', 'trick_similarity', 'done', '{\"events_through\": 1e12}', "
        "'{\"trained_through_event_id\": [1]}'), "
        "('train_head', 'trick_similarity', 'skipped', '\"garbage\"', '{}')"
    )
    events_conn.execute("UPDATE heaters_db_settings SET value = '2' WHERE name = 'retrain_every'")
    insert_event(events_conn)
    insert_event(events_conn)
    queued = "SELECT count(*) FROM pipeline_jobs WHERE kind = 'train_head' AND status = 'queued'"
    assert events_conn.execute(queued).fetchone() == (1,)  # two events past watermark 0

    warnings: list[str] = []
    events_conn.add_notice_handler(lambda notice: warnings.append(notice.message_primary))
    events_conn.execute(  # a broken enqueue, as a bug or a hand-edited function would be
        "CREATE OR REPLACE FUNCTION enqueue_train_job_if_due(mode text) RETURNS integer "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'broken on purpose'; END $$"
    )
    before = events_conn.execute("SELECT count(*) FROM clip_sorting_events").fetchone()[0]
    insert_event(events_conn)
    assert events_conn.execute("SELECT count(*) FROM clip_sorting_events").fetchone()[0] == (
        before + 1
    )
    assert any(
        "sorting events stored, but no train_head job could be enqueued for trick_similarity: "
        "broken on purpose" in warning
        for warning in warnings
    ), warnings
