"""The write path with learning running: heaters-side inserts must not wait on heads.

On one throwaway database (learning_common.Server), with an active 1024 -> 256 head (hidden
2048, as trained heads are):

1. a bulk insert of ``--rows`` embeddings (one COPY, one transaction): seconds inside the
   insert's transaction with the 0.1.0 trigger body (apply_head per row, from
   alembic/released/0.1.0.json), with today's projecting in the trigger (one apply_head_batch
   call per head, SET heaters_db.project_embeddings = 'trigger') and with today's default for
   a bulk statement, the queued projection (a catch-up job the daemon runs: seconds until every
   row is projected, too);
2. the longest wait of a heaters-side insert (one embedding per transaction, every 20 ms,
   projected by the trigger) while the head's HNSW index over ``--rows`` projected rows is
   built: a plain CREATE INDEX in a transaction (ensure_head_index) under the 0.1.0 trigger,
   the same build under today's (what the worker role does: the trigger finds the table
   locked and queues the row's projection), and CREATE INDEX CONCURRENTLY from the client
   (heaters_db.index_build);
3. the longest wait of the same inserts while activate_head catches up a head with none of
   the ``--rows`` rows projected yet: 0.1.0 (apply_head per row under a SHARE lock on
   embeddings) vs today's (batched, the bulk before the lock, only what changed under it);
4. what the default trigger's lock check costs a one-row insert (its NOWAIT lock attempt on
   projected_embeddings, a subtransaction): single-row inserts alternating between
   ``heaters_db.project_embeddings = 'trigger'`` (no check) and the default 'auto'.

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

from heaters_db.daemon import Daemon
from heaters_db.db import connect
from heaters_db.heads.module import ProjectionHead
from heaters_db.index_build import build_concurrently
from heaters_db.learning import store
from heaters_db.settings import Settings
from heaters_db.vector_copy import copy_rows

HEADING = "Write path with an active head: bulk insert and index builds"


def released_function(name: str) -> str:
    archive = json.loads((ROOT / "alembic" / "released" / "0.1.0.json").read_text())
    return archive["files"][f"sql/functions/{name}.sql"]


def released_trigger_body() -> str:
    return released_function("project_new_embeddings")


def current_trigger_body() -> str:
    return (ROOT / "sql" / "functions" / "project_new_embeddings.sql").read_text()


def current_activate_head() -> str:
    return (ROOT / "sql" / "functions" / "activate_head.sql").read_text()


def projected_rows(conn, head_id: int) -> int:
    return conn.execute(
        "SELECT count(*) FROM projected_embeddings WHERE projection_head_id = %s", (head_id,)
    ).fetchone()[0]


def run_catch_up(url: str) -> None:
    """The daemon (in this process) drains the queued catch-up job."""
    daemon = Daemon(Settings(device="cpu", lease_seconds=120), url, kinds=["reproject"], once=True)
    assert daemon.run() == 0


def bulk_insert_seconds(
    url: str, clip_ids: np.ndarray, vectors: np.ndarray, projection: str
) -> float:
    """Seconds of one transaction that COPYs the embeddings in (the trigger runs inside)."""
    with connect(url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        cur.execute("SELECT set_config('heaters_db.project_embeddings', %s, true)", (projection,))
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


def lock_check_cost(url: str, clip_ids: list[int], dim: int) -> dict[str, float]:
    """Median and 95th percentile milliseconds of one-row inserts (one per transaction, the
    active head projecting in the trigger) with and without the default mode's lock check,
    alternating so that both meet the same table and cache state."""
    rng = np.random.default_rng(2)
    times: dict[str, list[float]] = {"trigger": [], "auto": []}
    with connect(url, autocommit=True) as conn:
        for i, clip_id in enumerate(clip_ids):
            mode = "trigger" if i % 2 else "auto"
            conn.execute("SELECT set_config('heaters_db.project_embeddings', %s, false)", (mode,))
            started = time.perf_counter()
            conn.execute(
                "INSERT INTO embeddings (clip_id, model_name, generation_strategy, embedding) "
                "VALUES (%s, %s, %s, %s)",
                (clip_id, MODEL_NAME, STRATEGY, rng.normal(size=dim).astype(np.float32)),
            )
            times[mode].append(1000 * (time.perf_counter() - started))
    out: dict[str, float] = {}
    for mode, values in times.items():
        out[f"one_row_{mode}_ms"] = float(np.median(values))
        out[f"one_row_{mode}_p95_ms"] = float(np.percentile(values, 95))
        out[f"one_row_{mode}_n"] = len(values)
    return out


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
                    "FROM generate_series(1, 7000) g RETURNING id"
                ).fetchall()
            ]

            index = f"projected_embeddings_hnsw_head_{record.id}"
            drop_index = sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index))
            for indexed in (True, False):
                if not indexed:  # the projection alone, without HNSW maintenance
                    conn.execute(drop_index)
                for label, body, projection in (
                    ("0.1.0", released_trigger_body(), "trigger"),
                    ("now", current_trigger_body(), "trigger"),
                    ("queued", current_trigger_body(), "auto"),
                ):
                    conn.execute(body)
                    conn.execute("DELETE FROM embeddings")
                    conn.execute("DELETE FROM projected_embeddings")
                    seconds = bulk_insert_seconds(
                        url, library.clip_ids, library.vectors, projection
                    )
                    suffix = "" if indexed else "_noindex"
                    results[f"insert_{label}{suffix}"] = seconds
                    if label == "queued":
                        assert projected_rows(conn, record.id) == 0
                        started = time.perf_counter()
                        run_catch_up(url)
                        results[f"projected_{label}{suffix}"] = time.perf_counter() - started
                    assert projected_rows(conn, record.id) == args.rows
                    print(
                        f"bulk insert, {label}, index {indexed}: {seconds:.2f} s"
                        + (
                            f", projected after {results[f'projected_{label}{suffix}']:.2f} s"
                            if label == "queued"
                            else ""
                        ),
                        flush=True,
                    )

            builds = (
                ("0.1.0", released_trigger_body(), spare[:700]),
                ("worker", current_trigger_body(), spare[700:1400]),
                ("now", current_trigger_body(), spare[1400:2000]),
            )
            for label, body, batch in builds:
                conn.execute(body)
                conn.execute(drop_index)
                if label != "now":  # a plain CREATE INDEX, SHARE lock to its commit

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
            results.update(lock_check_cost(url, spare[6000:7000], args.dim))
            print(
                f"one-row insert: 'trigger' median {results['one_row_trigger_ms']:.2f} ms, "
                f"'auto' median {results['one_row_auto_ms']:.2f} ms",
                flush=True,
            )
            for label in ("0.1.0", "now"):
                candidate = store.insert_head(
                    conn,
                    mode="trick_similarity",
                    base_variant_id=variant_id,
                    head=ProjectionHead(args.dim, args.head_dim, 8 * args.head_dim),
                    status="candidate",
                    trained_through_event_id=0,
                    training_event_count=0,
                    metrics={},
                )
                conn.execute("SELECT ensure_head_index(%s)", (candidate.id,))  # as reproject does
                conn.execute(
                    released_function("activate_head")
                    if label == "0.1.0"
                    else current_activate_head()
                )
                batch = spare[2000:4000] if label == "0.1.0" else spare[4000:6000]

                def activate(head_id: int = candidate.id) -> None:
                    with connect(url, autocommit=True) as own:
                        own.execute("SELECT activate_head(%s)", (head_id,))

                longest, seconds, inserts = longest_insert_wait(url, activate, batch, args.dim)
                assert projected_rows(conn, candidate.id) >= args.rows
                results[f"activate_wait_{label}"] = longest
                results[f"activate_{label}"] = seconds
                results[f"activate_inserts_{label}"] = inserts
                print(
                    f"activation {label}: {seconds:.2f} s, longest insert {longest * 1000:.0f} ms "
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

| bulk insert of {args.rows:,} new embeddings (one COPY, one transaction) | seconds in the transaction | rows projected after (s) | same, the head's HNSW index absent: in the transaction | projected after |
|---|---:|---:|---:|---:|
| 0.1.0: trigger calls apply_head per row | {results["insert_0.1.0"]:.2f} | at commit | {results["insert_0.1.0_noindex"]:.2f} | at commit |
| now, `heaters_db.project_embeddings = 'trigger'`: one apply_head_batch call per head (numpy) | {results["insert_now"]:.2f} | at commit | {results["insert_now_noindex"]:.2f} | at commit |
| now, default for a statement of more than 256 rows: queued catch-up job, run by the daemon | {results["insert_queued"]:.2f} | {results["projected_queued"]:.2f} | {results["insert_queued_noindex"]:.2f} | {results["projected_queued_noindex"]:.2f} |

"rows projected after": from the insert's commit until the daemon (in the benchmark's process,
`--once`) has claimed the catch-up job and every row is projected. The queued projection is
the default for bulk statements: the insert's transaction (and the locks heaters holds in it)
no longer carries the projection and the head index upkeep; the rows are "not projected yet"
for the seconds in the second column. Statements of up to 256 rows (the daemon's embed
batches, heaters' own inserts) are still projected in the trigger, searchable at commit.

In the trigger rows, the difference between the first and the third column is the upkeep of
the head's HNSW index on projected_embeddings (one graph insertion per row), which batching the
projection cannot remove; the queued projection moves it into the daemon's job.

| head index build over {args.rows:,} projected rows, while heaters inserts one embedding every 20 ms | build s | longest insert ms | inserts |
|---|---:|---:|---:|
| 0.1.0: CREATE INDEX in a transaction (SHARE lock on projected_embeddings) | {results["build_0.1.0"]:.2f} | {results["wait_0.1.0"] * 1000:.0f} | {results["inserts_0.1.0"]:.0f} |
| now, the worker role's build (ensure_head_index: CREATE INDEX in a transaction); the trigger finds the table locked and queues the row's projection | {results["build_worker"]:.2f} | {results["wait_worker"] * 1000:.0f} | {results["inserts_worker"]:.0f} |
| now: CREATE INDEX CONCURRENTLY from the client | {results["build_now"]:.2f} | {results["wait_now"] * 1000:.0f} | {results["inserts_now"]:.0f} |

In the worker row the rows inserted during the build are searchable in the head's space once
the daemon has run the catch-up job they queued (not measured here), not at their commit.

| activate_head of a head with none of the {args.rows:,} rows projected, while heaters inserts one embedding every 20 ms | activation s | longest insert ms | inserts |
|---|---:|---:|---:|
| 0.1.0: apply_head per row, all under a SHARE lock on embeddings | {results["activate_0.1.0"]:.2f} | {results["activate_wait_0.1.0"] * 1000:.0f} | {results["activate_inserts_0.1.0"]:.0f} |
| now: batched, the bulk and what was written meanwhile before the lock; under it only the last few rows | {results["activate_now"]:.2f} | {results["activate_wait_now"] * 1000:.0f} | {results["activate_inserts_now"]:.0f} |

| one-row insert (one embedding per transaction, projected in the trigger, head index present) | inserts | median ms | 95th percentile ms |
|---|---:|---:|---:|
| `heaters_db.project_embeddings = 'trigger'`: no lock check | {results["one_row_trigger_n"]:.0f} | {results["one_row_trigger_ms"]:.2f} | {results["one_row_trigger_p95_ms"]:.2f} |
| default ('auto'): the NOWAIT lock check on projected_embeddings first (a subtransaction) | {results["one_row_auto_n"]:.0f} | {results["one_row_auto_ms"]:.2f} | {results["one_row_auto_p95_ms"]:.2f} |

The two rows alternate insert by insert in one session; their difference is what the check
that lets an insert go on past a worker's index build costs every small statement.
"""
    print(body)
    if not args.no_readme:
        write_section(HEADING, body)


if __name__ == "__main__":
    main()
