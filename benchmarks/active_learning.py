"""Latency of the two functions a sorting page calls per screen: next_anchors() (which
anchor to ask about next) and sorting_candidates() (what to show with it), in the states a
library goes through: cold start, after some events, with an active head.

How much the anchor policy buys in screens is measured by benchmarks/learning_curves.py (a
matrix of libraries x seeds x {next_anchors, random anchors}); this script measures only time.
Everything runs against a throwaway PostgreSQL (heaters-db's embedded cluster, or
HEATERS_BENCHMARK_SERVER_URL: a superuser URL to a server with pgvector and plpython3u), and
the script writes its section of benchmarks/README.md.

    .venv/bin/python benchmarks/active_learning.py                      # 10k and 100k clips
    .venv/bin/python benchmarks/active_learning.py --clips 10000 --no-readme
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.learning_common import (  # noqa: E402
    database_versions,
    machine,
    set_settings,
    write_section,
)
from heaters_db import migrations  # noqa: E402
from heaters_db.db import connect  # noqa: E402
from heaters_db.localdb import LocalCluster  # noqa: E402

SECTION = "Active learning: latency of next_anchors and sorting_candidates (active_learning.py)"


class Server:
    """Where the benchmark's databases live: a given server, or an embedded throwaway cluster."""

    def __init__(self) -> None:
        self.url = os.environ.get("HEATERS_BENCHMARK_SERVER_URL")
        self.cluster = None
        self.directory = None
        if not self.url:
            self.directory = Path(tempfile.mkdtemp(prefix="heaters-bench-"))
            self.cluster = LocalCluster(self.directory, fast_unsafe=True)
            self.url = self.cluster.up()
        self.template = f"bench_template_{uuid.uuid4().hex[:8]}"
        self._admin(f"CREATE DATABASE {self.template}")
        migrations.upgrade(self._database_url(self.template), "head")

    def _database_url(self, name: str) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        info["dbname"] = name
        return psycopg.conninfo.make_conninfo(**info)

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def fresh(self) -> tuple[str, str]:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        return name, self._database_url(name)

    def drop(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name}")

    def close(self) -> None:
        self.drop(self.template)
        if self.cluster is not None:
            self.cluster.destroy()
            shutil.rmtree(self.directory, ignore_errors=True)


def latency(server: Server, clips: int, calls: int) -> list[tuple[str, float, float, float]]:
    """p50/p95 of next_anchors(n=1) and sorting_candidates(n=8) on a library of clips
    clips (1024-d base in 200 planted clusters; a stand-in 256-d head: a random linear map of the
    base, so its space has the same cluster structure), HNSW indexes built."""
    from tests.support.planted_space import insert_active_head, insert_event, planted_clusters
    from tests.support.simulated_sorter import insert_clips, insert_embeddings, make_test_variant

    name, url = server.fresh()
    rows = []
    try:
        with connect(url, autocommit=True) as conn:
            dim, clusters = 1024, 200
            vectors, _ = planted_clusters(
                clusters, clips // clusters, dim, 1.5 / np.sqrt(dim), seed=0
            )
            # Time the informative path: evaluation picks (uniform draws, front-loaded until the
            # gate has its minimum) would otherwise answer the first calls cheaply.
            conn.execute(
                "UPDATE heaters_db_settings SET value = '0' WHERE name = 'anchor_random_share'"
            )
            variant_id = make_test_variant(conn, dim)
            clip_ids = [int(c) for c in insert_clips(conn, len(vectors))]
            insert_embeddings(conn, np.asarray(clip_ids), vectors)
            conn.execute("SELECT ensure_variant_index(%s)", (variant_id,))
            conn.execute("ANALYZE embeddings")
            rng = np.random.default_rng(1)

            def timed(label: str, sql: str, params=()) -> None:
                times = []
                for i in range(calls):
                    values = params(i) if callable(params) else params
                    tick = time.perf_counter()
                    conn.execute(sql, values).fetchall()
                    times.append(1000 * (time.perf_counter() - tick))
                rows.append(
                    (label, times[0], np.percentile(times[1:], 50), np.percentile(times[1:], 95))
                )

            anchors = lambda i: (clip_ids[(7919 * i) % len(clip_ids)],)  # noqa: E731
            asked = iter(range(len(clip_ids)))

            def ask(events: int) -> None:
                """Sorting events about clips nobody asked about yet."""
                for _ in range(events):
                    i = next(asked)
                    insert_event(conn, "trick", clip_ids[i], [clip_ids[-1 - i]], clip_ids[-1 - i])

            next_one = "SELECT * FROM next_anchors('trick', 1)"
            timed("next_anchors(n=1), cold start, no events yet", next_one)
            timed(
                "next_anchors(n=5), cold start, no events yet",
                "SELECT * FROM next_anchors('trick', 5)",
            )
            ask(45)
            timed("next_anchors(n=1), cold start, 45 events (46 clusters)", next_one)
            timed(
                "sorting_candidates(n=8), base space",
                "SELECT * FROM sorting_candidates(%s, 'trick', 8)",
                anchors,
            )

            ask(15)
            timed("next_anchors(n=1), no head, 60 events: least-asked of a pool of 32", next_one)
            set_settings(conn, anchor_ambiguity=1)  # the ranking by ambiguity
            timed("next_anchors(n=1), no head, 60 events: margins over a pool of 32", next_one)
            projection = rng.standard_normal((dim, 256)).astype(np.float32) / np.sqrt(dim)
            insert_active_head(conn, "trick", variant_id, clip_ids, vectors @ projection)
            timed("next_anchors(n=1), head active: margins + head/base kNN, pool of 32", next_one)
            set_settings(conn, anchor_ambiguity=0)  # least-asked picks, the default
            timed("next_anchors(n=1), head active: least-asked of a pool of 32", next_one)
            timed(
                "sorting_candidates(n=8), head active",
                "SELECT * FROM sorting_candidates(%s, 'trick', 8)",
                anchors,
            )
    finally:
        server.drop(name)
    return rows


def table(results: dict[int, list[tuple[str, float, float, float]]], calls: dict[int, int]) -> str:
    sizes = sorted(results)
    header = "| call | " + " | ".join(
        f"{n // 1000}k: first ms | {n // 1000}k: p50 | {n // 1000}k: p95" for n in sizes
    )
    lines = [header + " |", "|---|" + "---:|" * (3 * len(sizes))]
    for i, (label, *_rest) in enumerate(results[sizes[0]]):
        cells = []
        for n in sizes:
            _, first, p50, p95 = results[n][i]
            cells += [f"{first:.0f}", f"{p50:.1f}", f"{p95:.1f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Calls per row: "
        + ", ".join(f"{calls[n]} at {n // 1000}k" for n in sizes)
        + ". p50/p95 leave out the first call, which compiles the PL/Python module and, at the "
        "cold start, reads the 2,000-clip clustering sample and projects it to 64 dimensions "
        "(cached per session while the sampled clips stay the same).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--calls", type=int, default=30, help="calls per function (12 above 50k clips)"
    )
    parser.add_argument("--no-readme", action="store_true", help="Print only.")
    args = parser.parse_args()
    started = time.perf_counter()
    server = Server()
    results, calls = {}, {}
    try:
        for clips in args.clips:
            calls[clips] = args.calls if clips <= 50_000 else min(args.calls, 12)
            results[clips] = latency(server, clips, calls[clips])
        with connect(server._database_url(server.template), autocommit=True) as conn:
            versions = database_versions(conn)
    finally:
        server.close()
    body = (
        f"`{' '.join(['benchmarks/active_learning.py', *sys.argv[1:]])}`: 1024-d base vectors in 200 "
        "planted clusters with their HNSW index; then a stand-in 256-d head (a random linear "
        "map of the base, so its space keeps the clusters) with its projections and index; "
        "evaluation picks off (anchor_random_share 0), so every next_anchors call takes the "
        "informative path: least-asked picks (the default) or, with anchor_ambiguity 1, the "
        "ranking by ambiguity. "
        f"Client-side time per call (psycopg). Machine: {machine()}; {versions}; "
        f"{time.perf_counter() - started:.0f} s in all.\n\n" + table(results, calls)
    )
    print(body)
    if not args.no_readme:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
