"""What a downgrade would delete, so `heaters-db migrate REVISION` can refuse to before it runs.

A downgrade past some revisions drops rows nothing can recompute (the sorting events: people's
answers) or that cost hours to recompute (video embeddings). The schema refuses DELETE and
TRUNCATE of events, yet one mistyped revision dropped them all, and migrate printed success.
Each such revision is listed here with a count of what its downgrade deletes
(sql/queries/downgrade.sql); the released revisions themselves are never edited. Revisions whose
downgrades only drop functions, settings rows or derived state (pipeline jobs, anchor splits
derived again on upgrade) are not listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from heaters_db.queries import query

QUERIES = "downgrade.sql"


@dataclass(frozen=True)
class Loss:
    """Rows the downgrade of ``revision`` deletes: ``count`` of ``what``."""

    revision: str
    what: str
    count: int

    def __str__(self) -> str:
        return f"{self.what}: {self.count} (revision {self.revision})"


# revision -> (what its downgrade deletes, the query that counts it)
COUNTED = {
    "0002": ("embeddings of the video strategies", "video_embeddings"),
    "0005": ("sorting events", "sorting_events"),
    "0006": ("projection heads", "projection_heads"),
    "0013": ("sorting events' provenance (anchor_reason, candidate_sources)", "event_provenance"),
    "0015": ("moment-window embeddings", "moment_embeddings"),
    "0027": ("head activation history (which head replaced which, rollbacks)", "head_activations"),
}


def losses(conn: psycopg.Connection, revisions: Iterable[str]) -> list[Loss]:
    """What undoing ``revisions`` (all applied on ``conn``'s database) deletes; nothing lost: []."""
    found = []
    for revision in sorted(revisions):
        if revision == "0001":
            found += _created_tables(conn)
        elif revision in COUNTED:
            what, name = COUNTED[revision]
            count = _count(conn, query(QUERIES, name))
            if count:
                found.append(Loss(revision, what, count))
    return found


def _created_tables(conn: psycopg.Connection) -> list[Loss]:
    row = conn.execute(query(QUERIES, "heaters_tables_created")).fetchone()
    found = []
    for table in row[0] if row else []:
        count_rows = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        count = _count(conn, count_rows)
        if count:
            found.append(Loss("0001", f"rows of {table}", count))
    return found


def _count(conn: psycopg.Connection, statement: str | sql.Composed) -> int:
    row = conn.execute(statement).fetchone()
    return int(row[0]) if row else 0
