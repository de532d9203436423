"""Re-projection: pass every base embedding through a new head, index it, then switch it live.

Order of work (queries never see a half-built head, because only step 4 makes it visible):

1. stream the base variant's embeddings out with binary COPY (one connection) and project them
   with torch in batches;
2. in one transaction on a second connection, delete any earlier rows of this head and COPY the
   projections in (binary);
3. build the head's HNSW partial index (ensure_head_index);
4. activate_head(): in one transaction, project with apply_head the clips embedded since step 1,
   retire the previous head, mark this one active.

Run by a daemon job, each step's transaction first checks the job's lease (learning/fence.py):
a worker that lost its lease rolls the step back and stops. The index build (CREATE INDEX
CONCURRENTLY) cannot run inside a transaction; its lease is checked just before, and an index
is no result of its own: it indexes whatever rows the head holds, and the activation (fenced)
is what makes it serve.

``catch_up_head`` is the short form for an active head: only the rows it is missing or holds
stale (refresh_head_projections), queued by the embeddings trigger (project_head_later).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import struct
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import psycopg
import torch
from psycopg.rows import dict_row

from heaters_db import moments
from heaters_db.db import one_row
from heaters_db.heads.module import ProjectionHead
from heaters_db.index_build import build_concurrently
from heaters_db.learning import store
from heaters_db.learning.data import Variant
from heaters_db.learning.fence import Fence, hold
from heaters_db.queries import query
from heaters_db.vector_copy import HEADER, TRAILER, pack_copy_rows, read_vector_rows

log = logging.getLogger(__name__)

QUERIES = "learning.sql"
DEFAULT_BATCH_ROWS = 8192
INDEX_BUILD_MEMORY = "1GB"
# Statuses whose rows may be rewritten: a rejected head is never served, one still training has
# no final weights.
REPROJECTABLE = ("candidate", "retired", "active")


def project_batch(head: ProjectionHead, vectors: np.ndarray, device: str = "cpu") -> np.ndarray:
    """(n, input_dim) base vectors -> (n, output_dim) float32 unit vectors."""
    with torch.inference_mode():
        tensor = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
        return head(tensor).cpu().numpy().astype(np.float32, copy=False)


def base_checksums(vectors: np.ndarray) -> list[str]:
    """md5(vector_send(embedding)) of each base row, as the database computes it (int16 dim,
    int16 0, big-endian float32 values): what projected_embeddings.base_checksum holds so that
    activate_head can tell a row whose base was re-embedded since."""
    matrix = np.ascontiguousarray(vectors, dtype=">f4")
    prefix = struct.pack(">hh", matrix.shape[1], 0)
    return [hashlib.md5(prefix + row.tobytes()).hexdigest() for row in matrix]


def write_projections(
    connect: Callable[[], psycopg.Connection],
    record: store.HeadRecord,
    head: ProjectionHead,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    device: str = "cpu",
    fence: Fence | None = None,
) -> dict[str, Any]:
    """Steps 1-2: replace this head's projected rows with fresh ones for every clip."""
    variant = Variant(
        record.base_variant_id, record.model_name, record.generation_strategy, record.input_dim
    )
    head = head.to(device).eval()
    params = {
        "model_name": variant.model_name,
        "generation_strategy": variant.generation_strategy,
        "dim": variant.dim,
    }
    rows = 0
    seconds_project = 0.0
    started = time.perf_counter()
    with connect() as reader, connect() as writer:
        reader.autocommit = False  # one snapshot for the whole read
        writer.autocommit = False
        with reader.cursor() as source, writer.cursor() as target:
            batches = read_vector_rows(
                source, query(QUERIES, "copy_all_vectors"), params, variant.dim, batch_rows
            )
            # The read starts before the writer takes any lock: a worker stalled there holds
            # nothing another worker's re-projection or index build would wait for.
            first = next(batches, None)
            target.execute(query(QUERIES, "delete_projected_rows"), {"head_id": record.id})
            with target.copy(query(QUERIES, "copy_projected_rows")) as copy:
                copy.write(HEADER)
                for clip_ids, vectors in itertools.chain([first] if first else [], batches):
                    tick = time.perf_counter()
                    projected = project_batch(head, vectors, device)
                    seconds_project += time.perf_counter() - tick
                    copy.write(
                        pack_copy_rows(
                            [
                                ("int4", clip_ids),
                                ("int4", record.id),
                                ("vector", projected),
                                ("text", base_checksums(vectors)),
                            ],
                            len(clip_ids),
                        )
                    )
                    rows += len(clip_ids)
                copy.write(TRAILER)
            hold(writer, fence)  # just before the commit: the job row is locked only briefly
        reader.rollback()
        writer.commit()
    return {
        "rows": rows,
        "seconds_copy_and_project": round(time.perf_counter() - started, 3),
        "seconds_project": round(seconds_project, 3),
    }


def build_index(
    conn: psycopg.Connection, head_id: int, maintenance_work_mem: str | None = INDEX_BUILD_MEMORY
) -> dict[str, Any]:
    """Step 3: the head's HNSW index (no-op if it exists); on an autocommit connection with
    CREATE INDEX CONCURRENTLY (heaters_db.index_build), otherwise inside a transaction.

    An HNSW build is much slower once its graph outgrows maintenance_work_mem (the server
    default, 64MB, holds about 40k 256-d vectors), so it is raised for this transaction only.
    """
    if conn.autocommit:  # CONCURRENTLY: embedding inserts (projection trigger) never wait
        built = build_concurrently(conn, "head", head_id, maintenance_work_mem)
        return {"index": built["index"], "seconds_index": built["seconds_index"]}
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        if maintenance_work_mem:
            cur.execute(
                query(QUERIES, "raise_maintenance_work_mem"), {"value": maintenance_work_mem}
            )
        cur.execute(query(QUERIES, "ensure_head_index"), {"head_id": head_id})
        name = one_row(cur, "ensure_head_index")[0]
    return {"index": name, "seconds_index": round(time.perf_counter() - started, 3)}


def reproject_head(
    connect: Callable[[], psycopg.Connection],
    head_id: int,
    activate: bool = True,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    device: str = "cpu",
    fence: Fence | None = None,
    gated: bool = False,
) -> dict[str, Any]:
    """Re-project, index and (by default) activate one head; returns what was done and timings.

    ``connect`` opens a new connection (autocommit). An active head is re-projected in place: its
    rows are replaced in one transaction, so searches see the old rows until it commits; then
    the rows of clips embedded meanwhile are caught up (catch_up_head).
    ``gated``: the activation the gate's pass asked for (not an operator's): a candidate is
    activated only while what it was gated against still serves the mode (stale_gate).
    """
    with connect() as conn:
        record, head = store.load_projection_head(conn, head_id)
    if record.status not in REPROJECTABLE:
        raise store.HeadStateError(
            f"projection head {record.label} is {record.status}: only candidate, retired or "
            "active heads are re-projected"
        )
    log.info(
        "re-projecting clips",
        extra={"action": "reproject_start", "head_id": record.id, "mode": record.mode},
    )
    result: dict[str, Any] = {"head_id": record.id, "mode": record.mode, "version": record.version}
    result.update(write_projections(connect, record, head, batch_rows, device, fence))
    with connect() as conn:
        conn.autocommit = True  # a fresh connection: CONCURRENTLY needs no open transaction
        with conn.transaction():
            hold(conn, fence)  # not the same transaction as the build (see the docstring)
        result.update(build_index(conn, record.id))
        with conn.transaction():
            hold(conn, fence)
            result.update(moments.project_windows(conn, record.id))  # HOOK issue 12
        if activate and record.status != "active":
            started = time.perf_counter()
            # The gate's pass licenses the activation only while what it was gated against
            # serves: asked under the mode's activation lock, in the activation's transaction.
            refuse = (
                partial(stale_gate, record=record)
                if gated and record.status == "candidate"
                else None
            )
            activation = store.activate_head(conn, record.id, fence, refuse=refuse)
            result["activation"] = activation
            if activation.get("activated") is False:
                log.warning(
                    "not activating %s: %s",
                    record.label,
                    activation["reason"],
                    extra={"action": "reproject_not_activated", "head_id": record.id},
                )
            else:
                result["seconds_activate"] = round(time.perf_counter() - started, 3)
    if record.status == "active":
        # Its rows were replaced from one snapshot: a clip embedded or re-embedded after that
        # snapshot but before the replacement lost the row its trigger wrote, or kept the old
        # one. An activation refreshes those rows; a head already serving has none, so here.
        result["catch_up"] = catch_up_head(connect, record.id, fence)
    log.info("re-projected projection head", extra={"action": "reproject_done", **result})
    return result


def stale_gate(conn: psycopg.Connection, record: store.HeadRecord) -> str | None:
    """Why the gate's pass no longer licenses activating this candidate, or None.

    The gate compared the candidate with what served its mode then (metrics.baseline: the base
    space or a head). When another head went live since (a newer training, a concurrent
    `train --now`) or an operator rolled back, activating it would replace a head it was never
    compared with, and undo that decision without a word."""
    baseline = record.metrics.get("baseline") or {}
    if baseline.get("kind") not in ("base", "head"):
        return None  # a head stored before baselines were recorded: nothing to compare
    gated_against = baseline.get("head_id") if baseline.get("kind") == "head" else None
    serving = store.active_head(conn, record.mode)
    if (serving.id if serving else None) == gated_against:
        return None
    then = "the base space" if gated_against is None else f"head #{gated_against}"
    now = "the base space" if serving is None else serving.label
    return (
        f"it was gated against {then}, but {now} serves the mode now; it stays a candidate "
        "(train again to compare with what serves, or `heaters-db heads activate` it by hand)"
    )


def catch_up_head(
    connect: Callable[[], psycopg.Connection], head_id: int, fence: Fence | None = None
) -> dict[str, Any]:
    """Project the rows an active head is missing or holds stale (refresh_head_projections, in
    batches of apply_head_batch), in one fenced transaction. A head no longer active has
    nothing to catch up now: its next activation refreshes its rows."""
    started = time.perf_counter()
    with connect() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        hold(conn, fence)
        cur.execute(query(QUERIES, "head_is_active"), {"head_id": head_id})
        row = cur.fetchone()
        if row is None or not row["active"]:
            return {"head_id": head_id, "caught_up": 0, "reason": "the head is not active"}
        cur.execute(query(QUERIES, "refresh_head_projections"), {"head_id": head_id})
        rows = one_row(cur, "refresh_head_projections")["rows"]
    log.info(
        "caught up projected rows",
        extra={"action": "reproject_catch_up", "head_id": head_id, "rows": rows},
    )
    return {
        "head_id": head_id,
        "caught_up": rows,
        "seconds": round(time.perf_counter() - started, 3),
    }
