"""Named SQL blocks from ``sql/queries/*.sql``, so runtime SQL lives in readable files.

A file holds several queries, each headed by a ``-- name: <name>`` line; the lines up to the
next header (comments included) are that query's text::

    -- name: claim_jobs
    -- Claim up to max_jobs runnable jobs for this worker.
    SELECT * FROM claim_jobs(%(worker)s, %(kinds)s, %(max_jobs)s, %(lease_seconds)s);

Parameters use psycopg's ``%(name)s`` placeholders (server-side binding, never string-built).
``load_queries("queue.sql")["claim_jobs"]`` returns the text; files are read once per process.
"""

from __future__ import annotations

import re
from functools import cache

from heaters_db.errors import HeatersError
from heaters_db.resources import sql_path

_HEADER = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")


class QueryNotFound(HeatersError):
    """A named SQL query is missing from its file under sql/queries/."""


def parse_queries(text: str, source: str = "<string>") -> dict[str, str]:
    """Split `text` into {name: sql} at ``-- name: x`` headers (text before the first is ignored)."""
    queries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _HEADER.match(line.strip())
        if match:
            name = match.group(1)
            if name in queries:
                raise QueryNotFound(f"{source}: query {name!r} is defined twice")
            current = queries[name] = []
        elif current is not None:
            current.append(line)
    result = {}
    for name, lines in queries.items():
        body = "\n".join(lines).strip()
        if not _has_statement(body):
            raise QueryNotFound(f"{source}: query {name!r} has no SQL")
        result[name] = body
    return result


def _has_statement(body: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in body.splitlines())


@cache
def load_queries(filename: str) -> dict[str, str]:
    """The named queries of ``sql/queries/<filename>``."""
    path = sql_path(f"queries/{filename}")
    if not path.is_file():
        raise QueryNotFound(f"{path}: no such query file")
    return parse_queries(path.read_text(), source=str(path))


def query(filename: str, name: str) -> str:
    """One named query; a clear error naming the file when it is missing."""
    queries = load_queries(filename)
    try:
        return queries[name]
    except KeyError:
        raise QueryNotFound(
            f"sql/queries/{filename} has no query {name!r} (has: {', '.join(sorted(queries))})"
        ) from None
