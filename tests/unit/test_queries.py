"""The named-query loader (heaters_db.queries) and the query files it reads."""

from __future__ import annotations

import pytest

from heaters_db.queries import QueryNotFound, load_queries, parse_queries, query
from heaters_db.resources import sql_path


def test_blocks_split_at_name_headers() -> None:
    text = (
        "-- file comment, ignored\n"
        "-- name: first\n-- what it does\nSELECT 1;\n\n"
        "--name:second\nSELECT %(x)s\nFROM t;\n"
    )
    assert parse_queries(text) == {
        "first": "-- what it does\nSELECT 1;",
        "second": "SELECT %(x)s\nFROM t;",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;", "defined twice"),
        ("-- name: a\n-- only a comment\n", "has no SQL"),
    ],
)
def test_bad_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(QueryNotFound, match=message):
        parse_queries(text)


def test_every_query_file_parses() -> None:
    files = sorted(p.name for p in sql_path("queries").glob("*.sql"))
    assert {"queue.sql", "embeddings.sql"} <= set(files)
    for name in files:
        assert load_queries(name), name


def test_missing_names_are_clear() -> None:
    with pytest.raises(QueryNotFound, match="has no query 'nope'"):
        query("queue.sql", "nope")
    with pytest.raises(QueryNotFound, match="no such query file"):
        load_queries("nope.sql")
