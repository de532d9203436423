"""What the `embed`, `jobs` and `variant` commands share: a connection, named queries, tables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from heaters_db.db import connect, database_url
from heaters_db.queries import query

EMBEDDINGS = "embeddings.sql"
QUEUE = "queue.sql"


@contextmanager
def connection() -> Iterator[psycopg.Connection]:
    with connect(database_url(), autocommit=True) as conn:
        yield conn


def query_rows(
    conn: psycopg.Connection, file: str, name: str, **params: Any
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(file, name), params)
        return cur.fetchall() if cur.description else []


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[format_value(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
