"""HNSW builds that never block writers: CREATE INDEX CONCURRENTLY, driven from the client.

A plain CREATE INDEX holds a SHARE lock on its table for the whole build (~50 s at 100k rows):
on `embeddings` that stops heaters' own inserts, on `projected_embeddings` it stops every
embedding insert once a head is active (the projection trigger writes there). CONCURRENTLY
takes only SHARE UPDATE EXCLUSIVE, which writers do not conflict with, but it cannot run inside
a transaction block or a function, so the SQL side only describes the index
(functions/variant_index_definition.sql, head_index_definition.sql) and this module runs the
build on an autocommit connection. A build that failed half-way leaves an INVALID index behind;
it is dropped (CONCURRENTLY too) and built again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from heaters_db.queries import query

log = logging.getLogger(__name__)

QUERIES = "indexes.sql"


def build_concurrently(
    conn: psycopg.Connection,
    kind: str,
    object_id: int,
    maintenance_work_mem: str | None = None,
) -> dict[str, Any]:
    """Ensure the HNSW index of a variant (`kind="variant"`) or a head (`kind="head"`).

    `conn` must be in autocommit mode (CONCURRENTLY refuses a transaction block). Returns
    {"index", "built", "seconds_index"}.
    """
    if not conn.autocommit:
        raise ValueError("build_concurrently needs an autocommit connection")
    started = time.perf_counter()
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, f"{kind}_index_definition"), {"id": object_id})
        index = cur.fetchone()
    assert index is not None
    name = index["index_name"]
    if index["valid"]:
        return {"index": name, "built": False, "seconds_index": 0.0}
    if not index["may_build"]:
        return _build_as_owner(conn, kind, object_id, name, started)
    if index["present"]:  # left INVALID by an interrupted build
        log.warning("dropping invalid index %s", name, extra={"action": "index_rebuild"})
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
    if maintenance_work_mem:
        conn.execute(
            query(QUERIES, "session_maintenance_work_mem"), {"value": maintenance_work_mem}
        )
    try:
        # The definition comes from the database's own format() (%L-quoted names, integer dims).
        conn.execute(
            sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} {}").format(
                sql.Identifier(name), sql.SQL(index["definition"])
            )
        )
    finally:
        if maintenance_work_mem:
            conn.execute(query(QUERIES, "reset_maintenance_work_mem"))
    return {"index": name, "built": True, "seconds_index": round(time.perf_counter() - started, 3)}


def _build_as_owner(
    conn: psycopg.Connection, kind: str, object_id: int, name: str, started: float
) -> dict[str, Any]:
    """A login that does not own the table (heaters_worker) may not CREATE INDEX at all, so it
    asks ensure_<kind>_index (SECURITY DEFINER, the owner's rights): a plain build, which
    holds writers off for its duration. To avoid that, the owner can build it first:
    CREATE INDEX CONCURRENTLY with the definition from variant_index_definition(id) or
    head_index_definition(id)."""
    log.warning(
        "%s may not build index %s CONCURRENTLY (not the table's owner): building it through "
        "ensure_%s_index, which blocks writes to the table while it runs",
        conn.info.user,
        name,
        kind,
        extra={"action": "index_build_as_owner", "index": name},
    )
    conn.execute(query(QUERIES, f"ensure_{kind}_index"), {"id": object_id})
    return {"index": name, "built": True, "seconds_index": round(time.perf_counter() - started, 3)}
