"""projection_heads rows: store a trained head, read heads back, switch the one that serves a mode.

A head's weights are safetensors bytes with their sha256 (never pickle), its architecture a JSON
object, its metrics a JSON object. Versions count up per mode. Activation and rollback are SQL
functions (sql/functions/activate_head.sql, rollback_head.sql): one transaction each.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from heaters_db.db import one_row
from heaters_db.errors import PermanentJobError
from heaters_db.heads.module import ProjectionHead
from heaters_db.heads.serialization import (
    head_from_safetensors,
    head_to_safetensors,
    weights_checksum,
)
from heaters_db.learning.fence import Fence, hold
from heaters_db.queries import query

log = logging.getLogger(__name__)

QUERIES = "learning.sql"
STATUSES = ("training", "candidate", "active", "retired", "rejected")


class HeadNotFound(PermanentJobError):
    """No projection head has that id (a job for it is dead at once: retrying cannot help)."""


class HeadStateError(PermanentJobError):
    """The projection head is not in a state that allows this (e.g. activating a rejected
    head); a job that meets it is dead at once."""


@dataclass(frozen=True)
class HeadRecord:
    """One projection_heads row (weights only when asked for)."""

    id: int
    mode: str
    version: int
    status: str
    base_variant_id: int
    architecture: dict[str, Any]
    weights_checksum: str | None
    input_dim: int
    output_dim: int
    trained_through_event_id: int
    training_event_count: int
    metrics: dict[str, Any]
    activated_at: datetime | None
    inserted_at: datetime
    model_name: str
    generation_strategy: str
    weights: bytes | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> HeadRecord:
        values = {k: row[k] for k in cls.__dataclass_fields__ if k in row}
        if values.get("weights") is not None:
            values["weights"] = bytes(values["weights"])
        return cls(**values)

    @property
    def label(self) -> str:
        """'trick v3 (#12)'."""
        return f"{self.mode.removesuffix('_similarity')} v{self.version} (#{self.id})"


def json_ready(value: Any) -> Any:
    """A copy that JSON and jsonb accept: numpy scalars and arrays as Python, NaN/inf as null."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _jsonb(value: Any) -> Jsonb:
    return Jsonb(json_ready(value), dumps=lambda obj: json.dumps(obj, allow_nan=False))


def insert_head(
    conn: psycopg.Connection,
    *,
    mode: str,
    base_variant_id: int,
    head: ProjectionHead,
    status: str,
    trained_through_event_id: int,
    training_event_count: int,
    metrics: dict[str, Any],
    fence: Fence | None = None,
) -> HeadRecord:
    """Store a trained head as the mode's next version; returns its row (with weights).
    With a ``fence`` (a daemon job), only while the job's lease holds (else LeaseLost)."""
    if status not in STATUSES:
        raise HeadStateError(f"unknown projection head status {status!r}")
    weights = head_to_safetensors(head)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        hold(conn, fence)
        cur.execute(query(QUERIES, "lock_head_versions"), {"mode": mode})
        cur.execute(
            query(QUERIES, "insert_head"),
            {
                "mode": mode,
                "base_variant_id": base_variant_id,
                "architecture": _jsonb(head.architecture),
                "weights": weights,
                "weights_checksum": weights_checksum(weights),
                "input_dim": head.input_dim,
                "output_dim": head.output_dim,
                "trained_through_event_id": int(trained_through_event_id),
                "training_event_count": int(training_event_count),
                "metrics": _jsonb(metrics),
                "status": status,
            },
        )
        head_id = one_row(cur, "insert_head")["id"]
    record = get_head(conn, head_id, with_weights=True)
    log.info(
        "stored projection head",
        extra={
            "action": "head_stored",
            "head_id": record.id,
            "mode": record.mode,
            "version": record.version,
            "status": record.status,
        },
    )
    return record


def get_head(conn: psycopg.Connection, head_id: int, with_weights: bool = False) -> HeadRecord:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, "head"), {"head_id": head_id})
        row = cur.fetchone()
    if row is None:
        raise HeadNotFound(f"unknown projection head {head_id}")
    if not with_weights:
        row["weights"] = None
    return HeadRecord.from_row(row)


def load_projection_head(
    conn: psycopg.Connection, head_id: int
) -> tuple[HeadRecord, ProjectionHead]:
    """The row and the torch head built from its stored weights (checksum verified)."""
    record = get_head(conn, head_id, with_weights=True)
    if record.weights is None:
        raise HeadStateError(f"projection head {record.label} has no weights")
    if record.weights_checksum and weights_checksum(record.weights) != record.weights_checksum:
        raise HeadStateError(f"projection head {record.label}: weights do not match their checksum")
    return record, head_from_safetensors(record.weights, record.architecture)


def list_heads(conn: psycopg.Connection, mode: str | None = None) -> list[HeadRecord]:
    """Every head of a mode ('trick', 'spot', or None for both), by mode then version."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, "heads"), {"mode": mode})
        return [HeadRecord.from_row(row) for row in cur.fetchall()]


def active_head(conn: psycopg.Connection, mode: str) -> HeadRecord | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, "active_head"), {"mode": mode})
        head_id = one_row(cur, "active_head")["head_id"]
    return None if head_id is None else get_head(conn, head_id)


@contextmanager
def _head_errors() -> Iterator[None]:
    """The SQL functions' refusals as this module's exceptions (the CLI prints their message)."""
    try:
        yield
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        raise HeadStateError(exc.diag.message_primary or str(exc)) from exc
    except psycopg.errors.NoDataFound as exc:
        raise HeadNotFound(exc.diag.message_primary or str(exc)) from exc


def _call(
    conn: psycopg.Connection, name: str, params: dict[str, Any], fence: Fence | None = None
) -> dict[str, Any]:
    with _head_errors(), conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        hold(conn, fence)
        cur.execute(query(QUERIES, name), params)
        return one_row(cur, name)["result"]


def activate_head(
    conn: psycopg.Connection,
    head_id: int,
    fence: Fence | None = None,
    refuse: Callable[[psycopg.Connection], str | None] | None = None,
) -> dict[str, Any]:
    """SQL activate_head(): catch up, index, retire the old head, activate this one (atomic);
    with a ``fence``, in the transaction that checks the job's lease.

    ``refuse(conn)``: a reason not to activate after all, or None; asked in the same transaction
    once the mode's activation lock is held, so no other activation or rollback can change what
    it read before this one commits. A refusal returns ``{"activated": False, "reason": ...}``.
    """
    with _head_errors(), conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        hold(conn, fence)
        if refuse is not None:
            cur.execute(query(QUERIES, "lock_head_mode"), {"head_id": head_id})
            reason = refuse(conn)
            if reason:
                return {"activated": False, "reason": reason}
        cur.execute(query(QUERIES, "activate_head"), {"head_id": head_id})
        result = one_row(cur, "activate_head")["result"]
    log.info("activated projection head", extra={"action": "head_activated", **result})
    return result


def override_rejected_head(
    conn: psycopg.Connection, head_id: int, note: str | None = None
) -> dict[str, Any]:
    """An operator's override of the gate: the rejected head becomes a candidate (then it can be
    re-projected and activated); its metrics keep the gate's numbers and gain ``override``."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, "override_rejected_head"), {"head_id": head_id, "note": note})
        row = cur.fetchone()
    if row is None:
        record = get_head(conn, head_id)
        raise HeadStateError(
            f"projection head {record.label} is {record.status}, not rejected: nothing to force"
        )
    log.warning(
        "gate overridden by an operator",
        extra={"action": "head_gate_overridden", "head_id": head_id, **row["override"]},
    )
    return row["override"]


def rollback_head(conn: psycopg.Connection, mode: str) -> dict[str, Any]:
    """SQL rollback_head(): the head the mode's last activation replaced serves again (or the
    base variant)."""
    result = _call(conn, "rollback_head", {"mode": mode})
    log.info("rolled back projection head", extra={"action": "head_rolled_back", **result})
    return result


def prune_retired_heads(
    conn: psycopg.Connection, keep: int, mode: str | None = None
) -> list[dict[str, Any]]:
    """Retired heads beyond the newest `keep` of each mode lose their projected rows and their
    HNSW index; the head rows (weights, metrics) stay, so `heads activate` still works on one
    (activate_head re-projects the rows it lacks). `conn` must be autocommit: the index is
    dropped CONCURRENTLY (writers never wait), before the rows, so an activation that races
    the prune rebuilds an index rather than losing it. Returns one dict per head pruned."""
    from psycopg import sql

    if not conn.autocommit:
        raise ValueError("prune_retired_heads needs an autocommit connection")
    if keep < 0:
        raise ValueError("keep must be 0 or more")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, "prunable_heads"), {"keep": keep, "mode": mode})
        heads = cur.fetchall()
    pruned = []
    for head in heads:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query("indexes.sql", "head_index_definition"), {"id": head["id"]})
            index = one_row(cur, "head_index_definition")["index_name"]
            cur.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(index))
            )
            with conn.transaction():
                cur.execute(query(QUERIES, "lock_head_mode"), {"head_id": head["id"]})
                cur.execute(query(QUERIES, "prune_head_rows"), {"head_id": head["id"]})
                outcome = one_row(cur, "prune_head_rows")
        if outcome["retired"]:
            pruned.append({**head, "rows": outcome["rows"], "index": index})
            log.info(
                "pruned retired projection head",
                extra={"action": "head_pruned", "head_id": head["id"], "rows": outcome["rows"]},
            )
    return pruned
