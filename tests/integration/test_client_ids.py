"""Ids and counts as clients send them: numpy/pandas integers (psycopg sends them as bigint),
Python ints (smallint for small values), numeric; integer literals keep calling the integer
function; a fraction is refused by name; mixed argument types are never ambiguous."""

from __future__ import annotations

from decimal import Decimal

import numpy
import psycopg
import pytest

from tests.integration.test_security import library  # noqa: F401  (fixture)

ONE, TWO = numpy.int64(1), numpy.int64(2)


def test_numpy_ints_really_are_sent_as_bigint(conn: psycopg.Connection) -> None:
    # What the overloads exist for: without them these calls find no function.
    assert conn.execute("SELECT pg_typeof(%s)::text", (ONE,)).fetchone() == ("bigint",)
    assert conn.execute("SELECT pg_typeof(%s)::text", ([ONE, TWO],)).fetchone() == ("bigint[]",)
    assert conn.execute("SELECT pg_typeof(%s)::text", (1,)).fetchone() == ("smallint",)


def rows(conn: psycopg.Connection, sql: str, params: tuple = ()) -> list[tuple]:
    return conn.execute(sql, params).fetchall()


def test_every_public_function_takes_numpy_ids_and_counts(
    conn: psycopg.Connection,
    library: int,  # noqa: F811
) -> None:
    head = numpy.int64(library)
    assert rows(conn, "SELECT * FROM similar_clips(%s, 'trick', %s)", (ONE, TWO)) == rows(
        conn, "SELECT * FROM similar_clips(1, 'trick', 2)"
    )
    assert len(rows(conn, "SELECT * FROM similar_clips(%s)", (ONE,))) == 3
    assert rows(conn, "SELECT * FROM similar_to_embedding('[1,2,4]', 'spot', %s)", (TWO,)) == rows(
        conn, "SELECT * FROM similar_to_embedding('[1,2,4]', 'spot', 2)"
    )
    assert rows(conn, "SELECT apply_head(%s, '[1,2,4]')::text", (head,)) == rows(
        conn, "SELECT apply_head(%s::integer, '[1,2,4]')::text", (library,)
    )
    candidates = rows(conn, "SELECT clip_id FROM sorting_candidates(%s, 'spot', %s)", (ONE, TWO))
    assert len(candidates) == 2 and all(c[0] in (2, 3, 4) for c in candidates)
    shown = rows(conn, "SELECT clip_id FROM evaluation_candidates(%s, 'spot', %s)", (ONE, TWO))
    assert len(shown) == 2 and all(c[0] in (2, 3, 4) for c in shown)
    anchors = rows(conn, "SELECT clip_id FROM next_anchors('spot', %s)", (TWO,))
    assert len(anchors) == 2
    # Clips 1..4 have no file: no jobs, but the call resolves and runs.
    assert rows(conn, "SELECT enqueue_embed_jobs(%s)", ([ONE, TWO],)) == [(0,)]
    conn.execute("UPDATE clips SET clip_filepath = 'clips/' || id || '.mp4'")
    assert rows(
        conn, "SELECT enqueue_embed_jobs(%s, only_missing => false, variant_ids => %s)",
        ([ONE, TWO], [numpy.int64(1)]),
    ) == [(0,)]  # fmt: skip
    assert rows(conn, "SELECT enqueue_embed_jobs(%s, true)", ([Decimal(3), Decimal("4.0")],)) == [
        (0,)
    ]
    files = rows(conn, "SELECT id FROM sorting_clip_files(%s) ORDER BY id", ([ONE, TWO],))
    assert files == [(1,), (2,)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("SELECT * FROM similar_clips(1.5)", "clip_id must be a whole number, got 1.5"),
        ("SELECT * FROM similar_clips(1, 'trick', 2.5)", "k must be a whole number, got 2.5"),
        ("SELECT * FROM similar_to_embedding('[1,2,4]', 'trick', 1.5)", "k must be a whole number"),
        ("SELECT apply_head(1.5, '[1,2,4]')", "head_id must be a whole number, got 1.5"),
        ("SELECT * FROM sorting_candidates(1.5)", "anchor must be a whole number, got 1.5"),
        ("SELECT * FROM next_anchors('trick', 1.5)", "n must be a whole number, got 1.5"),
        ("SELECT * FROM evaluation_candidates(1.5)", "anchor must be a whole number, got 1.5"),
        ("SELECT * FROM similar_moments(1.5, 0, 1)", "clip_id must be a whole number, got 1.5"),
        (
            "SELECT * FROM similar_moments_to_embedding('[1,2,4]', 'trick', 1.5)",
            "k must be a whole number, got 1.5",
        ),
        ("SELECT * FROM similar_clips(3000000000)", "clip_id is out of range for an integer"),
        (
            "SELECT enqueue_embed_jobs('{1,1.5,2.5,3.5,4.5,5.5,6.5}')",
            "clip_ids must hold whole numbers in integer range, got 1.5, 2.5, 3.5, 4.5, 5.5, ... "
            "(6 in all)",
        ),
        ("SELECT * FROM sorting_clip_files('{0.5}')", "clip_ids must hold whole numbers"),
    ],
)
def test_fractional_ids_are_refused_by_name(
    conn: psycopg.Connection, call: str, message: str
) -> None:
    with pytest.raises(
        psycopg.errors.DatabaseError,
        match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\."),
    ):
        conn.execute(call)


def function_calls(conn: psycopg.Connection, sql: str) -> dict[str, int]:
    """Which functions one statement called (this transaction's function statistics)."""
    with conn.transaction():
        conn.execute("SET LOCAL track_functions = 'all'")
        conn.execute(sql).fetchall()
        return dict(
            conn.execute(
                "SELECT f.funcid::regprocedure::text, f.calls FROM pg_stat_xact_user_functions f"
            ).fetchall()
        )


def test_integer_literals_call_the_integer_function(
    conn: psycopg.Connection,
    library: int,  # noqa: F811
) -> None:
    plain = function_calls(conn, "SELECT * FROM similar_clips(1, 'trick', 2)")
    assert "similar_clips(integer,text,integer)" in plain
    assert "integral_argument(double precision,text)" not in plain
    via_bigint = function_calls(conn, "SELECT * FROM similar_clips(1::bigint, 'trick', 2)")
    assert via_bigint["integral_argument(double precision,text)"] == 2
    assert "similar_clips(integer,text,integer)" in via_bigint


@pytest.mark.parametrize(
    "call",
    [
        "SELECT * FROM similar_clips(1)",
        "SELECT * FROM similar_clips(1::smallint)",
        "SELECT * FROM similar_clips(1::bigint, 'spot')",
        "SELECT * FROM similar_clips(1, 'spot', 2::bigint)",
        "SELECT * FROM similar_clips(1::bigint, 'spot', 2::smallint)",
        "SELECT * FROM similar_clips(1::numeric, 'spot', 2)",
        "SELECT * FROM similar_clips('1')",
        "SELECT * FROM similar_to_embedding('[1,2,4]')",
        "SELECT * FROM similar_to_embedding('[1,2,4]', 'spot')",
        "SELECT * FROM similar_to_embedding('[1,2,4]', 'spot', 2::bigint)",
        "SELECT * FROM next_anchors()",
        "SELECT * FROM next_anchors('spot')",
        "SELECT * FROM next_anchors('spot', 2::smallint)",
        "SELECT * FROM sorting_candidates(1)",
        "SELECT * FROM sorting_candidates(1::bigint, 'spot', 2)",
        "SELECT * FROM sorting_candidates(1, 'spot', 2::numeric)",
        "SELECT enqueue_embed_jobs(NULL)",
        "SELECT enqueue_embed_jobs('{1}', true)",
        "SELECT enqueue_embed_jobs(ARRAY[1, 2])",
        "SELECT enqueue_embed_jobs(ARRAY[1::smallint])",
    ],
)
def test_mixed_argument_types_are_never_ambiguous(
    conn: psycopg.Connection,
    library: int,  # noqa: F811
    call: str,
) -> None:
    conn.execute(call).fetchall()
