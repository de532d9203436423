"""Screens a simulated sorter needs before trick recall@10 reaches a target: anchors chosen by
next_anchors() against anchors drawn uniformly at random, over several seeds.

Everything runs for real against a throwaway PostgreSQL (heaters-db's embedded cluster, or
HEATERS_BENCHMARK_SERVER_URL: a superuser URL to a server with pgvector and plpython3u):

    for each seed, for each strategy (next_anchors, random):
        a fresh database with the synthetic library of tests/support/simulated_sorter.py
        (8 tricks x 6 spots, base vectors mixing trick, spot and a louder nuisance factor);
        repeat: `screens` sorting screens -- anchor from the strategy, candidates from
            sorting_candidates(anchor, 'trick', 8), answers from the simulated sorter, inserted as
            clip_sorting_events rows -- then one training run (heaters_db.learning.jobs.train_mode:
            train, held-out gate, re-project, activate) and recall@10 of same-trick neighbours
            over every clip through similar_clips(clip, 'trick', 10);
        until the target recall or the screen budget is reached.

Only the anchor choice differs between the two strategies of a seed: same library, same
sorter seed, same candidate function, same training settings.

    .venv/bin/python benchmarks/active_learning.py --seeds 0 1 2 3 4
    .venv/bin/python benchmarks/active_learning.py --latency --clips 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from heaters_db import migrations  # noqa: E402
from heaters_db.db import connect  # noqa: E402
from heaters_db.heads.metrics import head_space, same_label_recall_at_k  # noqa: E402
from heaters_db.learning import jobs, store  # noqa: E402
from heaters_db.learning.jobs import TrainingSkipped  # noqa: E402
from heaters_db.localdb import LocalCluster  # noqa: E402
from tests.support.simulated_sorter import (  # noqa: E402
    SimulatedSorter,
    insert_library,
    label_recall,
    make_library,
    make_test_variant,
)

STRATEGIES = ("next_anchors", "random")
SETTINGS = {
    "holdout_percent": "30",
    "head_output_dim": "32",
    "head_hidden_dim": "64",
    "head_max_epochs": "150",
    # Training runs are started by the benchmark after every batch of screens, not by the trigger.
    "retrain_every": "100000",
}


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


def candidate_recall(conn, library, head_id: int) -> float:
    """Exact recall@10 of the head a training run produced, served or not: what the screens
    taught, apart from whether the held-out gate let it go live."""
    _, head = store.load_projection_head(conn, head_id)
    embedded = head_space(head)(library.vectors)
    return float(same_label_recall_at_k(embedded, library.tricks, 10).mean())


def pick_anchor(
    conn, strategy: str, clip_ids: np.ndarray, rng: np.random.Generator
) -> tuple[int, str]:
    """(anchor clip id, why it was picked)."""
    if strategy == "next_anchors":
        return conn.execute("SELECT clip_id, reason FROM next_anchors('trick', 1)").fetchone()
    return int(rng.choice(clip_ids)), "uniform"


def run(server: Server, strategy: str, seed: int, args) -> dict:
    """One strategy on one seed's library: recall after each batch of screens."""
    name, url = server.fresh()
    try:
        with connect(url, autocommit=True) as conn:
            for setting, value in SETTINGS.items():
                conn.execute(
                    "UPDATE heaters_db_settings SET value = %s WHERE name = %s", (value, setting)
                )
            make_test_variant(conn, args.dim)
            library = make_library(dim=args.dim, per_pair=args.per_pair, seed=seed)
            insert_library(conn, library)
            conn.execute("SELECT ensure_variant_index(id) FROM embedding_variants WHERE is_default")
            conn.execute("SELECT setseed(%s)", (0.1 + seed / 100,))
            sorter = SimulatedSorter(library, "trick", seed=1000 + seed)
            rng = np.random.default_rng(2000 + seed)
            base = label_recall(conn, library, "trick", "trick")
            curve = [(0, base, "base", base)]
            seconds = {"choose_anchor": [], "sorting_candidates": [], "train": []}
            reasons: dict[str, int] = {}
            screens = 0
            while screens < args.budget and curve[-1][1] < args.target:
                for _ in range(args.screens):
                    tick = time.perf_counter()
                    anchor, reason = pick_anchor(conn, strategy, library.clip_ids, rng)
                    reasons[reason] = reasons.get(reason, 0) + 1
                    seconds["choose_anchor"].append(time.perf_counter() - tick)
                    tick = time.perf_counter()
                    shown = [
                        r[0]
                        for r in conn.execute(
                            "SELECT clip_id FROM sorting_candidates(%s, 'trick', 8) "
                            "ORDER BY position",
                            (anchor,),
                        )
                    ]
                    seconds["sorting_candidates"].append(time.perf_counter() - tick)
                    selected, rejected = sorter.answer(anchor, shown)
                    conn.execute(
                        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, "
                        "rejected_clip_ids, candidate_clip_ids, sorting_mode) "
                        "VALUES (%s, %s, %s, %s, 'trick_similarity')",
                        (anchor, selected, rejected, shown),
                    )
                    screens += 1
                tick = time.perf_counter()
                try:
                    result = jobs.train_mode(
                        lambda url=url: connect(url, autocommit=True),
                        "trick",
                        overrides={"seed": seed},
                        activation="inline",
                        device="cpu",
                    )
                    status = result["status"]
                    trained = candidate_recall(conn, library, result["head_id"])
                except TrainingSkipped:
                    status, trained = "skipped", None
                seconds["train"].append(time.perf_counter() - tick)
                served = label_recall(conn, library, "trick", "trick")
                curve.append((screens, served, status, trained))
    finally:
        server.drop(name)
    return {
        "strategy": strategy,
        "seed": seed,
        "screens_to_target": first_reach(curve, args.target, 1),
        "curve": [
            (s, round(r, 4), status, None if t is None else round(t, 4))
            for s, r, status, t in curve
        ],
        "anchor_reasons": reasons,
        "median_ms": {k: round(1000 * float(np.median(v)), 1) for k, v in seconds.items() if v},
    }


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {model}, {os.cpu_count()} CPUs"


def recall_at(curve: list, screens: int) -> float:
    """Recall served after `screens` screens (the last measurement at or before it; once the
    target is reached a run stops, and its last recall stands for the rest of the budget)."""
    return [c[1] for c in curve if c[0] <= screens][-1]


def first_reach(curve: list, target: float, column: int) -> int | None:
    """Screens at the first measurement whose recall (column 1: served, 3: trained) >= target."""
    return next((c[0] for c in curve if c[column] is not None and c[column] >= target), None)


def summarise(results: list[dict], args) -> str:
    budget = f"> {args.budget}"
    lines = [
        f"target recall@10 (same trick) >= {args.target}; budget {args.budget} screens; "
        f"{args.screens} screens per training run; library {8 * 6 * args.per_pair} clips, "
        f"{args.dim}-d base",
        "",
        "Screens until the target: served = similar_clips after the held-out gate; trained = the "
        "head the training run produced, whether or not the gate let it go live.",
        "",
        "| seed | base recall | next_anchors served | random served "
        "| next_anchors trained | random trained |",
        "|---|---|---|---|---|---|",
    ]
    by_seed: dict[int, dict[str, dict]] = {}
    for result in results:
        by_seed.setdefault(result["seed"], {})[result["strategy"]] = result
    for seed, pair in sorted(by_seed.items()):
        cells = [
            str(first_reach(pair[s]["curve"], args.target, column) or budget) if s in pair else "-"
            for column in (1, 3)
            for s in STRATEGIES
        ]
        base = next(iter(pair.values()))["curve"][0][1]
        lines.append(f"| {seed} | {base:.3f} | " + " | ".join(cells) + " |")
    lines.append("")
    for column, label in ((1, "served"), (3, "trained")):
        for strategy in STRATEGIES:
            reached = [
                first_reach(r["curve"], args.target, column)
                for r in results
                if r["strategy"] == strategy
            ]
            if reached:
                capped = [s if s is not None else args.budget for s in reached]
                lines.append(
                    f"- {label}, {strategy}: target reached in "
                    f"{sum(s is not None for s in reached)}/{len(reached)} runs; mean screens "
                    f"{np.mean(capped):.0f} (a miss counts as the budget)"
                )
    checkpoints = [c for c in (args.budget // 4, args.budget // 2, args.budget) if c > 0]
    lines.append("\nMean served recall@10 after a number of screens (across seeds):\n")
    lines.append("| strategy | " + " | ".join(f"{c} screens" for c in checkpoints) + " |")
    lines.append("|---|" + "---|" * len(checkpoints))
    for strategy in STRATEGIES:
        runs = [r for r in results if r["strategy"] == strategy]
        if runs:
            means = [np.mean([recall_at(r["curve"], c) for r in runs]) for c in checkpoints]
            lines.append(f"| {strategy} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    lines.append(
        "\nAfter each training run: screens:served recall (recall of the head that run trained; "
        "* = it passed the gate and went live)"
    )
    for result in results:
        points = [f"{c[0]}:{c[1]:.3f}" for c in result["curve"][:1]] + [
            f"{s}:{r:.3f}({'-' if t is None else f'{t:.3f}'}{'*' if st == 'active' else ''})"
            for s, r, st, t in result["curve"][1:]
        ]
        lines.append(f"- seed {result['seed']} {result['strategy']}: " + ", ".join(points))
    lines.append("\nAnchor reasons and median milliseconds per call:")
    for result in results:
        lines.append(
            f"- seed {result['seed']} {result['strategy']}: {result['anchor_reasons']}, "
            f"{result['median_ms']}"
        )
    return "\n".join(lines)


def latency(server: Server, args) -> str:
    """p50/p95 of next_anchors(n=1) and sorting_candidates(n=8) on a library of args.clips
    clips (1024-d base in 200 planted clusters; a stand-in 256-d head: a random linear map of the
    base, so its space has the same cluster structure), HNSW indexes built."""
    from tests.support.planted_space import insert_active_head, insert_event, planted_clusters
    from tests.support.simulated_sorter import insert_clips, insert_embeddings

    name, url = server.fresh()
    rows = []
    try:
        with connect(url, autocommit=True) as conn:
            dim, clusters = 1024, 200
            vectors, _ = planted_clusters(
                clusters, args.clips // clusters, dim, 1.5 / np.sqrt(dim), seed=0
            )
            variant_id = make_test_variant(conn, dim)
            clip_ids = [int(c) for c in insert_clips(conn, len(vectors))]
            insert_embeddings(conn, np.asarray(clip_ids), vectors)
            conn.execute("SELECT ensure_variant_index(%s)", (variant_id,))
            conn.execute("ANALYZE embeddings")
            rng = np.random.default_rng(1)

            def timed(label: str, sql: str, params=()) -> None:
                times = []
                for i in range(args.calls):
                    values = params(i) if callable(params) else params
                    tick = time.perf_counter()
                    conn.execute(sql, values).fetchall()
                    times.append(1000 * (time.perf_counter() - tick))
                rows.append(
                    f"| {label} | {times[0]:.0f} | {np.percentile(times[1:], 50):.1f} | "
                    f"{np.percentile(times[1:], 95):.1f} |"
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
            timed("next_anchors(n=1), no head, 60 events: margins over a pool of 32", next_one)
            projection = rng.standard_normal((dim, 256)).astype(np.float32) / np.sqrt(dim)
            insert_active_head(conn, "trick", variant_id, clip_ids, vectors @ projection)
            timed("next_anchors(n=1), head active: margins + head/base kNN, pool of 32", next_one)
            timed(
                "sorting_candidates(n=8), head active",
                "SELECT * FROM sorting_candidates(%s, 'trick', 8)",
                anchors,
            )
    finally:
        server.drop(name)
    header = [
        f"{args.clips} clips, {args.calls} calls each (first call apart: it compiles the "
        "PL/Python module and, at the cold start, reads and caches the clustering sample)",
        "",
        "| call | first ms | p50 ms | p95 ms |",
        "|---|---|---|---|",
    ]
    return "\n".join(header + rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--target", type=float, default=0.75, help="recall@10 to reach")
    parser.add_argument("--screens", type=int, default=20, help="screens per training run")
    parser.add_argument("--budget", type=int, default=400, help="most screens per run")
    parser.add_argument("--per-pair", type=int, default=8, help="clips per (trick, spot)")
    parser.add_argument("--dim", type=int, default=64, help="base dimension")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--latency", action="store_true", help="time the two functions instead (see --clips)"
    )
    parser.add_argument("--clips", type=int, default=10_000, help="library size for --latency")
    parser.add_argument("--calls", type=int, default=30, help="calls per function for --latency")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    server = Server()
    results = []
    if args.latency:
        try:
            print(latency(server, args))
        finally:
            server.close()
        print(f"\n{machine()}; {time.perf_counter() - started:.0f} s in all")
        return
    try:
        for seed in args.seeds:
            for strategy in STRATEGIES:
                results.append(run(server, strategy, seed, args))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        server.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(summarise(results, args))
    print(f"\n{machine()}, torch {torch.__version__} on 1 thread; ", end="")
    print(f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
