"""The write path with learning running: heaters-side inserts must not wait on heads.

On one throwaway database (learning_common.Server), with an active 1024 -> 256 head (hidden
2048, as trained heads are):

1. a bulk insert of ``--rows`` embeddings (one COPY, one transaction): seconds inside the
   insert's transaction with the 0.1.0 trigger body (apply_head per row, from
   alembic/released/0.1.0.json) and with today's (one apply_head_batch call per head);
2. the longest wait of a heaters-side insert (one embedding per transaction, every 20 ms,
   projected by the trigger) while the head's HNSW index over ``--rows`` projected rows is
   built: a plain CREATE INDEX in a transaction (ensure_head_index, 0.1.0) vs
   CREATE INDEX CONCURRENTLY from the client (heaters_db.index_build).

    .venv/bin/python benchmarks/write_path.py
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np
import torch
from learning_common import (
    MODEL_NAME,
    ROOT,
    STRATEGY,
    Library,
    Server,
    database_versions,
    load_library,
    machine,
    write_section,
)
from psycopg import sql

from heaters_db.db import connect
from heaters_db.heads.module import ProjectionHead
from heaters_db.index_build import build_concurrently
from heaters_db.learning import store
from heaters_db.vector_copy import copy_rows

HEADING = "Write path with an active head: bulk insert and index builds"


def released_trigger_body() -> str:
    archive = json.loads((ROOT / "alembic" / "released" / "0.1.0.json").read_text())
    return archive["files"]["sql/functions/project_new_embeddings.sql"]


def current_trigger_body() -> str:
    return (ROOT / "sql" / "functions" / "project_new_embeddings.sql").read_text()


def bulk_insert_seconds(url: str, clip_ids: np.ndarray, vectors: np.ndarray) -> float:
    """Seconds of one transaction that COPYs the embeddings in (the trigger runs inside)."""
    with connect(url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        copy_rows(
            cur,
            "COPY embeddings (clip_id, model_name, generation_strategy, embedding_dim, embedding) "
            "FROM STDIN (FORMAT BINARY)",
            [
                ("int4", clip_ids),
                ("text", MODEL_NAME),
                ("text", STRATEGY),
                ("int4", vectors.shape[1]),
                ("vector", vectors),
            ],
            len(clip_ids),
        )
        conn.commit()
        return time.perf_counter() - started


def longest_insert_wait(
    url: str, build, spare_clip_ids: list[int], dim: int
) -> tuple[float, float, int]:
    """(longest insert seconds, build seconds, inserts) while `build()` runs."""
    stop = threading.Event()
    waits: list[float] = []
    rng = np.random.default_rng(1)

    def writer() -> None:
        with connect(url, autocommit=True) as conn:
            for clip_id in spare_clip_ids:
                if stop.is_set():
                    break
                started = time.perf_counter()
                conn.execute(
                    "INSERT INTO embeddings (clip_id, model_name, generation_strategy, embedding) "
                    "VALUES (%s, %s, %s, %s)",
                    (clip_id, MODEL_NAME, STRATEGY, rng.normal(size=dim).astype(np.float32)),
                )
                waits.append(time.perf_counter() - started)
                time.sleep(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.5)  # the writer is going
    started = time.perf_counter()
    build()
    seconds = time.perf_counter() - started
    time.sleep(0.3)
    stop.set()
    thread.join()
    return max(waits), seconds, len(waits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--head-dim", type=int, default=256)
    parser.add_argument("--no-readme", action="store_true", help="Print only.")
    args = parser.parse_args()

    server = Server()
    results: dict[str, float] = {}
    try:
        url = server.database()
        with connect(url, autocommit=True) as conn:
            versions = database_versions(conn)
            library = Library(args.rows, args.dim)
            load_library(conn, library)  # clips and their embeddings; removed again below
            variant_id = conn.execute("SELECT (default_variant()).id").fetchone()[0]
            torch.manual_seed(0)
            head = ProjectionHead(args.dim, args.head_dim, 8 * args.head_dim)
            record = store.insert_head(
                conn,
                mode="trick_similarity",
                base_variant_id=variant_id,
                head=head,
                status="candidate",
                trained_through_event_id=0,
                training_event_count=0,
                metrics={},
            )
            conn.execute("DELETE FROM embeddings")
            store.activate_head(conn, record.id)
            spare = [
                r[0]
                for r in conn.execute(
                    "INSERT INTO clips (clip_identifier) SELECT 'spare-' || g "
                    "FROM generate_series(1, 2000) g RETURNING id"
                ).fetchall()
            ]

            index = f"projected_embeddings_hnsw_head_{record.id}"
            drop_index = sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index))
            for indexed in (True, False):
                if not indexed:  # the projection alone, without HNSW maintenance
                    conn.execute(drop_index)
                for label, body in (
                    ("0.1.0", released_trigger_body()),
                    ("now", current_trigger_body()),
                ):
                    conn.execute(body)
                    conn.execute("DELETE FROM embeddings")
                    seconds = bulk_insert_seconds(url, library.clip_ids, library.vectors)
                    projected = conn.execute(
                        "SELECT count(*) FROM projected_embeddings WHERE projection_head_id = %s",
                        (record.id,),
                    ).fetchone()[0]
                    assert projected == args.rows, projected
                    key = f"insert_{label}" + ("" if indexed else "_noindex")
                    results[key] = seconds
                    print(
                        f"bulk insert, trigger {label}, index {indexed}: {seconds:.2f} s",
                        flush=True,
                    )

            for label in ("0.1.0", "now"):
                conn.execute(drop_index)
                batch = spare[:1000] if label == "0.1.0" else spare[1000:]
                if label == "0.1.0":

                    def build() -> None:
                        with connect(url) as own:
                            own.execute("SELECT ensure_head_index(%s)", (record.id,))
                            own.commit()
                else:

                    def build() -> None:
                        with connect(url, autocommit=True) as own:
                            build_concurrently(own, "head", record.id)

                longest, seconds, inserts = longest_insert_wait(url, build, batch, args.dim)
                results[f"wait_{label}"], results[f"build_{label}"] = longest, seconds
                results[f"inserts_{label}"] = inserts
                print(
                    f"index build {label}: {seconds:.2f} s, longest insert {longest * 1000:.0f} ms "
                    f"({inserts} inserts)",
                    flush=True,
                )
    finally:
        server.close()

    body = f"""
`benchmarks/write_path.py`: {args.rows:,} embeddings of {args.dim}-d, an active
{args.dim} -> {args.head_dim} head (hidden {8 * args.head_dim}). Machine: {machine()};
{versions}, server defaults. Both rows of each table come from the same run and database:
"0.1.0" runs the released SQL (alembic/released/0.1.0.json), "now" today's.

| bulk insert of {args.rows:,} embeddings (one COPY, one transaction) | seconds in the transaction | same, the head's HNSW index absent |
|---|---:|---:|
| 0.1.0: trigger calls apply_head per row | {results["insert_0.1.0"]:.2f} | {results["insert_0.1.0_noindex"]:.2f} |
| now: one apply_head_batch call per head (numpy, one matrix product) | {results["insert_now"]:.2f} | {results["insert_now_noindex"]:.2f} |

The difference between the two columns is the upkeep of the head's HNSW index on
projected_embeddings (one graph insertion per row), which batching the projection cannot remove.

| head index build over {args.rows:,} projected rows, while heaters inserts one embedding every 20 ms | build s | longest insert ms | inserts |
|---|---:|---:|---:|
| 0.1.0: CREATE INDEX in a transaction (SHARE lock on projected_embeddings) | {results["build_0.1.0"]:.2f} | {results["wait_0.1.0"] * 1000:.0f} | {results["inserts_0.1.0"]:.0f} |
| now: CREATE INDEX CONCURRENTLY from the client | {results["build_now"]:.2f} | {results["wait_now"] * 1000:.0f} | {results["inserts_now"]:.0f} |

The alternative to the batched trigger, a queued projection job, was not measured: it moves
the cost out of the insert's transaction but leaves rows unprojected until a daemon runs.
"""
    print(body)
    if not args.no_readme:
        write_section(HEADING, body)


if __name__ == "__main__":
    main()
