"""Seconds to train a head, re-project 100k clips and index them (1024-d base, 256-d head).

Against a throwaway PostgreSQL (see learning_common.Server):

1. a synthetic library of ``--clips`` clips with ``--dim``-d base embeddings (binary COPY);
2. ``--events`` trick sorting events inserted as rows: 2 clips of the anchor's trick and 6 random
   clips shown (10% of screens without a same-trick clip, answered "none similar"), answered by a
   simulated sorter from the planted trick latents;
3. one training run as the daemon does it (heaters_db.learning.jobs.train_mode: read the views and
   the base embeddings, train, gate against the base space, store), timed;
4. re-projection of every clip (heaters_db.learning.reproject.reproject_head: binary COPY out, torch,
   binary COPY in), the HNSW index build, and the activation, each timed.

    .venv/bin/python benchmarks/learning_scale.py            # 100k clips, 2000 events
    .venv/bin/python benchmarks/learning_scale.py --clips 20000 --events 500 --no-readme
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from learning_common import (
    Library,
    Server,
    benchmark_parser,
    database_versions,
    factory,
    load_library,
    machine,
    set_settings,
    write_section,
)

from heaters_db.db import connect
from heaters_db.learning import jobs
from heaters_db.learning.reproject import reproject_head

HEADING = "Learning loop at scale: train, re-project, index"


def sorting_events(library: Library, count: int, seed: int = 0) -> list[tuple]:
    """(anchor, selected, rejected, candidates, mode, response ms) rows from the planted tricks."""
    rng = np.random.default_rng(seed)
    ids, tricks = library.clip_ids, library.tricks
    by_trick = {t: np.flatnonzero(tricks == t) for t in np.unique(tricks)}
    latents = library.trick_latents / np.linalg.norm(library.trick_latents, axis=1, keepdims=True)
    rows = []
    for _ in range(count):
        anchor = int(rng.integers(len(ids)))
        shown = set()
        if rng.random() >= 0.1:
            same = by_trick[tricks[anchor]]
            shown.update(int(r) for r in rng.choice(same[same != anchor], 2, replace=False))
        while len(shown) < 8:
            row = int(rng.integers(len(ids)))
            if row != anchor and tricks[row] != tricks[anchor]:
                shown.add(row)
        shown = list(shown)
        rng.shuffle(shown)
        same = [r for r in shown if tricks[r] == tricks[anchor]]
        selected = max(same, key=lambda r: float(latents[r] @ latents[anchor])) if same else None
        rejected = [
            int(ids[r])
            for r in shown
            if r != selected and tricks[r] != tricks[anchor] and rng.random() < 0.5
        ]
        rows.append(
            (
                int(ids[anchor]),
                None if selected is None else int(ids[selected]),
                rejected,
                [int(ids[r]) for r in shown],
                "trick_similarity",
                int(rng.integers(500, 5000)),
            )
        )
    return rows


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()

    server = Server()
    try:
        url = server.database()
        connect_new = factory(url)
        with connect(url, autocommit=True) as conn:
            versions = database_versions(conn)
            set_settings(
                conn, retrain_every=10**9, head_output_dim=args.head_dim, head_hidden_dim=0
            )
            library = Library(args.clips, args.dim)
            seconds_load = load_library(conn, library)
            print(
                f"loaded {args.clips} x {args.dim} embeddings in {seconds_load:.1f} s", flush=True
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, rejected_clip_ids, "
                    "candidate_clip_ids, sorting_mode, response_time_ms) VALUES (%s, %s, %s, %s, %s, %s)",
                    sorting_events(library, args.events),
                )

        started = time.perf_counter()
        trained = jobs.train_mode(connect_new, "trick", activation="none", device="cpu")
        seconds_run = time.perf_counter() - started
        print(
            json.dumps({k: trained[k] for k in ("status", "reason", "seconds_train")}), flush=True
        )
        note = ""
        with connect(url, autocommit=True) as conn:
            if trained["status"] == "rejected":
                # Still time the re-projection of the head that was trained.
                conn.execute(
                    "UPDATE projection_heads SET status = 'candidate' WHERE id = %s",
                    (trained["head_id"],),
                )
                note = " (the gate rejected it; re-projected anyway for the timing)"
        reprojected = reproject_head(connect_new, trained["head_id"], device="cpu")
        print(json.dumps(reprojected, default=str), flush=True)
        with connect(url, autocommit=True) as conn:
            metrics = conn.execute(
                "SELECT metrics FROM projection_heads WHERE id = %s", (trained["head_id"],)
            ).fetchone()[0]
    finally:
        server.close()

    training = metrics["training"]
    seconds = metrics["seconds"]
    rows = reprojected["rows"]
    end_to_end = (
        seconds_run
        + reprojected["seconds_copy_and_project"]
        + reprojected["seconds_index"]
        + reprojected["seconds_activate"]
    )
    body = f"""
`benchmarks/learning_scale.py`: {args.clips:,} clips, {args.dim}-d base, {args.head_dim}-d head
(hidden {metrics["config"]["hidden_dim"] or 8 * args.head_dim}, {training["parameters"]:,} parameters),
{args.events:,} trick sorting events (simulated sorter on planted factors), torch on CPU with
{torch.get_num_threads()} threads. Machine: {machine()}; {versions}, server defaults (the
index build raises `maintenance_work_mem` to 1GB for its own transaction, see
heaters_db/learning/reproject.py).

| step | seconds | |
|---|---:|---|
| load the training data (views + {metrics["data"]["clips"]:,} base vectors by binary COPY) | {seconds["load"]:.1f} | |
| train (InfoNCE, early stopping: best epoch {training["best_epoch"]} of {training["epochs_run"]}) | {seconds["train"]:.1f} | |
| whole training run (load, train, gate, store) | {seconds_run:.1f} | gate: {trained["status"]}{note} |
| re-project {rows:,} clips (COPY out + torch + COPY in) | {reprojected["seconds_copy_and_project"]:.1f} | torch alone {reprojected["seconds_project"]:.1f} s, {rows / max(reprojected["seconds_copy_and_project"], 1e-9):,.0f} rows/s |
| build the head's HNSW index | {reprojected["seconds_index"]:.1f} | m=16, ef_construction=64 (pgvector defaults) |
| activate (catch-up + switch, one transaction) | {reprojected["seconds_activate"]:.2f} | |
| **total** | **{end_to_end:.1f}** | |

Holdout after training: triplet accuracy {trained["holdout"]["triplet_accuracy"]:.3f} vs base
{trained["baseline"]["triplet_accuracy"]:.3f}, screen top-1 {trained["holdout"]["screen_top1"]:.3f} vs base
{trained["baseline"]["screen_top1"]:.3f} ({trained["holdout"]["events"]} holdout events).
"""
    print(body)
    if not args.no_readme:
        write_section(HEADING, body)


if __name__ == "__main__":
    main()
