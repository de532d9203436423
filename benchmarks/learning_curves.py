"""Learning curves: does every round of sorting make served trick search better?

A matrix of synthetic libraries x seeds x anchor policies, everything through the public SQL
surface of a throwaway PostgreSQL (heaters-db's embedded cluster, or
HEATERS_BENCHMARK_SERVER_URL): base vectors are inserted straight into `embeddings` (no videos);
each screen is

    next_anchors('trick', 1)                    -- reason 'evaluation' for ~15 % of screens
      -> evaluation_candidates(anchor)          (evaluation screens, both policies alike)
      -> else sorting_candidates(anchor)        (policy next_anchors: its anchor; policy random:
                                                 a uniformly drawn anchor, anchor_reason 'random')
    simulated sorter -> INSERT INTO clip_sorting_events (with anchor_reason, candidate_sources)

and every ``--round`` screens one training run through the real train path
(heaters_db.learning.jobs.train_mode: train, gate, re-project, activate). Measured after each
round: served recall@10 of same-trick clips (similar_clips(clip, 'trick', 10) over every clip)
and the exact recall@10 of the head just trained (its space over every base vector, whether or
not the gate let it serve: learned vs served).

Library generators (the matrix rows):
- scene_dominated: 64-d, spot factor 3x the trick factor; sorter picks a same-trick clip,
  marks half of the other-trick ones clearly wrong;
- many_same_trick: 4 tricks only (several same-trick candidates per screen); the sorter rejects
  everything it did not pick (the old page's habit);
- noisy_sorter: as scene_dominated with 15 % of answers a random shown clip;
- none_frequent: 16 tricks (most screens "none similar");
- wide_1024: as scene_dominated in 1024 dimensions;
- weak_trick (held-out check only): 12 tricks x 12 spots, the trick factor 0.7, louder noise,
  10 % wrong answers.

--held-out is the check against tuning to the matrix: seeds 5-9 (the matrix uses 0-4), 300
clips per library (the matrix 120, so fewer screens than clips), and weak_trick, a library no
setting was chosen on. It writes its own README section, PNG and runs file.

    .venv/bin/python benchmarks/learning_curves.py            # full: 300 screens, 5 seeds
    .venv/bin/python benchmarks/learning_curves.py --quick    # 200 screens, 4 generators
    .venv/bin/python benchmarks/learning_curves.py --held-out --json /tmp/held_out.json
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.learning_common import (  # noqa: E402
    Server,
    database_versions,
    factory,
    machine,
    write_section,
)
from benchmarks.learning_curves_report import CHECKPOINTS, POLICIES, plot, summarise  # noqa: E402
from heaters_db.db import connect  # noqa: E402
from heaters_db.heads.metrics import head_space, same_label_recall_at_k  # noqa: E402
from heaters_db.learning import jobs, store  # noqa: E402
from heaters_db.learning.jobs import TrainingSkipped  # noqa: E402
from tests.support.simulated_sorter import (  # noqa: E402
    insert_clips,
    insert_embeddings,
    make_test_variant,
)

# Everything else is the shipped default (heads shaped by the validation fold, head_max_epochs):
# the matrix measures what a new user gets. Each run records the head settings it trained with.
SETTINGS = {
    "retrain_every": "1000000",  # the benchmark starts each training itself
    "anchor_reuse_after_events": "60",
}
HEAD_SETTINGS = ("head_output_dim", "head_hidden_dim", "head_max_epochs")
IMAGE = Path(__file__).resolve().parent / "learning_curves.png"
HELD_OUT_IMAGE = IMAGE.with_name("learning_curves_held_out.png")


@dataclass(frozen=True)
class Generator:
    name: str
    dim: int = 64
    tricks: int = 8
    spots: int = 6
    trick_scale: float = 1.0
    spot_scale: float = 3.0
    noise: float = 0.6
    wrong_share: float = 0.0  # answers that are a random shown clip
    reject_all: bool = False  # reject everything not picked (else half of the wrong ones)


GENERATORS = {
    "scene_dominated": Generator("scene_dominated"),
    "many_same_trick": Generator("many_same_trick", tricks=4, reject_all=True),
    "noisy_sorter": Generator("noisy_sorter", wrong_share=0.15),
    "none_frequent": Generator("none_frequent", tricks=16, spots=4),
    "wide_1024": Generator("wide_1024", dim=1024),
    "weak_trick": Generator(
        "weak_trick", tricks=12, spots=12, trick_scale=0.7, noise=0.8, wrong_share=0.1
    ),
}
MATRIX = ("scene_dominated", "many_same_trick", "noisy_sorter", "none_frequent", "wide_1024")
QUICK = ("scene_dominated", "many_same_trick", "noisy_sorter", "wide_1024")
HELD_OUT = {"seeds": [5, 6, 7, 8, 9], "clips": 300, "generators": [*MATRIX, "weak_trick"]}
SECTION = "Learning curves: served recall per round (learning_curves.py)"
HELD_OUT_SECTION = "Learning curves, held-out check (learning_curves.py --held-out)"


def make_vectors(g: Generator, clips: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(clips, dim) base vectors and trick labels: trick + louder spot + noise, random maps."""
    rng = np.random.default_rng(seed)
    latent = 8
    trick_centres = rng.standard_normal((g.tricks, latent))
    spot_centres = rng.standard_normal((g.spots, latent))
    trick_map = rng.standard_normal((latent, g.dim)) / np.sqrt(latent)
    spot_map = rng.standard_normal((latent, g.dim)) / np.sqrt(latent)
    tricks = rng.integers(0, g.tricks, clips)
    spots = rng.integers(0, g.spots, clips)
    trick_part = (trick_centres[tricks] + 0.3 * rng.standard_normal((clips, latent))) @ trick_map
    spot_part = (spot_centres[spots] + 0.3 * rng.standard_normal((clips, latent))) @ spot_map
    noise = g.noise * rng.standard_normal((clips, g.dim))
    vectors = g.trick_scale * trick_part + g.spot_scale * spot_part + noise
    return vectors.astype(np.float32), tricks


def answer(g: Generator, labels, anchor: int, shown: list[int], rng) -> tuple:
    """(selected or None, rejected): any same-trick clip shown (a person does not follow a
    space's order), else none; rejections per the generator."""
    if rng.random() < g.wrong_share:
        selected = int(rng.choice(shown))
    else:
        right = [c for c in shown if labels[c] == labels[anchor]]
        selected = int(rng.choice(right)) if right else None
    if g.reject_all or selected is None:
        rejected = [c for c in shown if c != selected]
    else:
        rejected = [c for c in shown if labels[c] != labels[anchor] and rng.random() < 0.5]
    return selected, [c for c in rejected if c != selected]


def gate_numbers(gate: dict) -> dict:
    """Each score's paired difference and interval against the base and the live head: what the
    deciding metric saw, and what the others would have (JSON-ready, for the runs' file)."""
    return {
        side: {
            name: {k: result.get(k) for k in ("events", "difference", "interval")}
            for name, result in (gate.get(side) or {}).items()
        }
        for side in ("vs_base", "vs_live")
    }


def served_recall(conn, labels: dict[int, int]) -> float:
    shares = []
    for clip in labels:
        rows = conn.execute("SELECT clip_id FROM similar_clips(%s, 'trick', 10)", (clip,))
        found = [r[0] for r in rows.fetchall()]
        shares.append(np.mean([labels[c] == labels[clip] for c in found]) if found else 0.0)
    return float(np.mean(shares))


def run_one(server: Server, g: Generator, seed: int, policy: str, args) -> dict:
    url = server.database()
    rng = np.random.default_rng(1000 * seed + 7)
    with connect(url, autocommit=True) as conn:
        for name, value in SETTINGS.items():
            conn.execute("UPDATE heaters_db_settings SET value = %s WHERE name = %s", (value, name))
        head_settings = dict(
            conn.execute(
                "SELECT name, value FROM heaters_db_settings WHERE name = ANY(%s) ORDER BY name",
                (list(HEAD_SETTINGS),),
            ).fetchall()
        )
        make_test_variant(conn, g.dim)
        vectors, tricks = make_vectors(g, args.clips, seed)
        clip_ids = insert_clips(conn, len(vectors))
        insert_embeddings(conn, clip_ids, vectors)
        labels = {int(c): int(t) for c, t in zip(clip_ids, tricks, strict=True)}
        order = np.argsort(clip_ids)
        conn.execute("SELECT setseed(%s)", (seed / 10 + 0.05,))
        base = served_recall(conn, labels)
        curve = [{"screens": 0, "served": base, "learned": None, "status": "base"}]
        for screen in range(1, args.screens + 1):
            row = conn.execute("SELECT clip_id, reason FROM next_anchors('trick', 1)").fetchone()
            anchor, reason = int(row[0]), row[1]
            if reason == "evaluation":
                function = "evaluation_candidates"
            else:
                function = "sorting_candidates"
                if policy == "random":
                    anchor, reason = int(rng.choice(clip_ids)), "random"
            shown_rows = conn.execute(
                f"SELECT clip_id, source FROM {function}(%s, 'trick', 8) ORDER BY position",
                (anchor,),
            ).fetchall()
            shown = [int(r[0]) for r in shown_rows]
            selected, rejected = answer(g, labels, anchor, shown, rng)
            conn.execute(
                "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, "
                "rejected_clip_ids, candidate_clip_ids, sorting_mode, anchor_reason, "
                "candidate_sources) VALUES (%s, %s, %s, %s, 'trick_similarity', %s, %s)",
                (anchor, selected, rejected, shown, reason, [r[1] for r in shown_rows]),
            )
            if screen % args.round:
                continue
            point = {"screens": screen, "learned": None, "status": "skipped", "reason": None}
            try:
                result = jobs.train_mode(factory(url), "trick", activation="inline")
                record, head = store.load_projection_head(conn, result["head_id"])
                embedded = head_space(head)(vectors[order])
                point["learned"] = float(same_label_recall_at_k(embedded, tricks[order], 10).mean())
                point["status"], point["reason"] = record.status, result["reason"]
                point["gate"] = gate_numbers(record.metrics.get("gate") or {})
                # "warm" (continued from the live head) or "pca" (fresh): heads/capacity.py.
                capacity = record.metrics["training"].get("capacity", {})
                point["start"] = capacity.get("chosen", {}).get("start")
                point["validation_screens"] = record.metrics["training"].get("validation_screens")
                point["capacity"] = capacity
            except TrainingSkipped as skipped:
                point["reason"] = skipped.reason
            point["served"] = served_recall(conn, labels)
            curve.append(point)
    return {
        "generator": g.name,
        "seed": seed,
        "policy": policy,
        "base": base,
        "curve": curve,
        "head_settings": head_settings,
    }


def run_matrix(args) -> list[dict]:
    """Every generator x seed x policy, seed by seed (an interrupted matrix then has every
    library with fewer seeds, not some libraries with none). Each run records when it finished,
    the machine line and the database versions, so `--summarise` of its JSON says how it ran."""
    started = time.monotonic()
    server = Server(autovacuum=False)  # repeatable runs: learning_common.Server
    runs: list[dict] = []
    try:
        with connect(server.database(), autocommit=True) as conn:
            versions = database_versions(conn)
        for seed in args.seeds:
            for name in args.generators:
                for policy in POLICIES:
                    run = run_one(server, GENERATORS[name], seed, policy, args)
                    run.update(
                        seconds=round(time.monotonic() - started, 1),
                        machine=machine(),
                        versions=versions,
                        command=" ".join(sys.argv[1:]),
                        clips=args.clips,
                        round=args.round,
                        screens=args.screens,
                    )
                    runs.append(run)
                    last = run["curve"][-1]
                    print(
                        f"{name} seed {seed} {policy}: base {run['base']:.3f} -> served "
                        f"{last['served']:.3f} (learned {last['learned']}) [{run['seconds']:.0f} s]",
                        flush=True,
                    )
                    if args.json:  # what has run so far survives an interrupted matrix
                        args.json.write_text(json.dumps(runs, indent=1))
    finally:
        server.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 generators, 200 screens")
    parser.add_argument(
        "--held-out",
        action="store_true",
        help="The held-out check: seeds 5-9, 300 clips, every generator with weak_trick; its own "
        "README section and PNG (also with --summarise).",
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="default 0-4 (--held-out: 5-9)")
    parser.add_argument("--screens", type=int)
    parser.add_argument("--round", type=int, default=25)
    parser.add_argument("--clips", type=int, default=240)
    parser.add_argument("--generators", nargs="+", choices=sorted(GENERATORS))
    parser.add_argument("--json", type=Path, help="Also write every run's curve here.")
    parser.add_argument(
        "--summarise",
        type=Path,
        help="Only summarise the runs of an earlier --json file (e.g. of an interrupted matrix).",
    )
    args = parser.parse_args()
    if args.held_out:
        args.seeds, args.clips = args.seeds or HELD_OUT["seeds"], HELD_OUT["clips"]
        args.generators = args.generators or HELD_OUT["generators"]
        args.round = 50
    args.seeds = args.seeds or [0, 1, 2, 3, 4]
    args.screens = args.screens or (200 if args.quick else 300)
    args.generators = args.generators or list(QUICK if args.quick else MATRIX)
    if args.quick and args.round == 25:
        args.round = 50
    if any(c % args.round for c in CHECKPOINTS if c <= args.screens):
        parser.error(f"--round {args.round} must divide the checkpoints {CHECKPOINTS}")
    if args.summarise:
        runs = json.loads(args.summarise.read_text())
        args.generators = [g for g in args.generators if any(r["generator"] == g for r in runs)]
        args.seeds = sorted({r["seed"] for r in runs})
        args.screens, args.round, args.clips = (runs[-1][k] for k in ("screens", "round", "clips"))
    else:
        # A TERM (kill, a CI timeout) ends the matrix like Ctrl-C: the cluster is removed and the
        # JSON keeps the finished runs.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        torch.set_num_threads(1)
        runs = run_matrix(args)
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1))
    plot(runs, args.generators, HELD_OUT_IMAGE if args.held_out else IMAGE)
    body = summarise(runs, args.generators, args.seeds)
    print(body)
    write_section(HELD_OUT_SECTION if args.held_out else SECTION, body)


if __name__ == "__main__":
    main()
