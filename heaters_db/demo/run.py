"""`heaters-db demo`: the whole pipeline, non-interactively, on synthetic sample clips.

1. the embedded PostgreSQL (a `heaters_demo` database, recreated each run) migrated to head;
2. a V-JEPA 2: $HEATERS_MODEL (hub id or local dir: real weights) or a small random-weight one;
3. sample clips written as H.264 files and inserted into `clips` -> the trigger enqueues embed
   jobs -> a real `heaters-db daemon` subprocess embeds them;
4. recall@10 of same-trick clips through similar_clips(x, 'trick') in the base space;
5. sorting rounds by the simulated sorter through next_anchors / sorting_candidates / INSERT;
   the retrain trigger enqueues train_head jobs, the daemon trains, gates and activates heads;
6. the same recall@10 again, and how to open the sorting page on the same data.
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg.rows import DictRow, dict_row
from tqdm import tqdm

from heaters_db import migrations
from heaters_db.db import connect
from heaters_db.demo import sorter
from heaters_db.demo.synthetic_clips import SampleClip, write_sample_clips
from heaters_db.errors import HeatersError
from heaters_db.localdb import LocalCluster
from heaters_db.queries import query
from heaters_db.settings import Settings

log = logging.getLogger(__name__)

DEMO_DATABASE = "heaters_demo"
RANDOM_MODEL_NAME = "heaters/vjepa2-demo-random"
STRATEGY = "video_full_clip"
QUERIES = "demo.sql"
# The demo's one connection returns dict rows.
Conn = psycopg.Connection[DictRow]


class DemoError(HeatersError):
    """The demo could not finish."""


@dataclass
class DemoConfig:
    tricks: int = 6
    spots: int = 6
    frames: int = 16
    screens_per_round: int = 40
    rounds: int = 4
    k: int = 10
    seed: int = 0
    timeout_seconds: float = 240.0


def say(message: str) -> None:
    click.secho(message, fg="cyan", bold=True)


def _demo_url(settings: Settings) -> str:
    cluster_url = LocalCluster(settings.home).up()
    base, _, _ = cluster_url.rpartition("/")
    with psycopg.connect(cluster_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (DEMO_DATABASE,),
        )
        admin.execute(f"DROP DATABASE IF EXISTS {DEMO_DATABASE}")
        admin.execute(f"CREATE DATABASE {DEMO_DATABASE}")
    return f"{base}/{DEMO_DATABASE}"


def _model(settings: Settings) -> tuple[str, Path | None, int]:
    """(model name for the variant, HEATERS_MODEL_DIR for the daemon, frames per clip)."""
    real = os.environ.get("HEATERS_MODEL")
    if real:
        say(f"Model: {real} (HEATERS_MODEL), 64 frames per clip")
        return real, settings.model_dir, 64
    from heaters_db.embedding.random_weights import save_random_vjepa2

    model_dir = (settings.home / "models").resolve()
    target = model_dir / RANDOM_MODEL_NAME
    if not (target / "config.json").exists():
        save_random_vjepa2(target)
    say(
        "Model: a small V-JEPA 2 with RANDOM weights (no weights can be downloaded here; set "
        "HEATERS_MODEL=facebook/vjepa2-vitl-fpc64-256 or a local dir for real ones). Its vectors "
        "follow the pixels - mostly the scene - so the trick head has real work to do."
    )
    return RANDOM_MODEL_NAME, model_dir, DemoConfig.frames


@contextmanager
def _daemon(
    url: str, media_root: Path, model_dir: Path | None, log_path: Path
) -> Iterator[subprocess.Popen]:
    env = os.environ | {
        "HEATERS_DATABASE_URL": url,
        "HEATERS_MEDIA_ROOT": str(media_root),
        "HEATERS_POLL_SECONDS": "1",
        "HEATERS_BATCH_SIZE": "8",
    }
    if model_dir:
        env["HEATERS_MODEL_DIR"] = str(model_dir)
    with open(log_path, "w") as daemon_log:
        process = subprocess.Popen(
            [sys.executable, "-m", "heaters_db", "daemon"],
            env=env,
            stdout=daemon_log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait(
    conn: Conn,
    sql: str,
    params: dict[str, Any],
    done: Callable[[DictRow | None], bool],
    what: str,
    timeout: float,
    daemon: subprocess.Popen,
) -> DictRow:
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(sql, params).fetchone()
        if done(row):
            assert row is not None  # done() accepts a row only
            return row
        if daemon.poll() is not None:
            raise DemoError(
                f"the daemon exited ({daemon.returncode}) while waiting for {what}; see its log"
            )
        if time.monotonic() > deadline:
            raise DemoError(f"timed out waiting for {what}: {row}")
        time.sleep(0.5)


def _recall_at_k(conn: Conn, clips: dict[int, SampleClip], k: int) -> float:
    """Mean share of a clip's same-trick clips found in its similar_clips(x, 'trick', k)."""
    recalls = []
    for clip_id, clip in clips.items():
        same = sum(1 for other in clips.values() if other.trick == clip.trick) - 1
        rows = conn.execute(
            query(QUERIES, "similar_clips"), {"clip_id": clip_id, "mode": "trick", "k": k}
        ).fetchall()
        hits = sum(1 for row in rows if clips[row["clip_id"]].trick == clip.trick)
        recalls.append(hits / min(k, same))
    return sum(recalls) / len(recalls)


def _show_neighbours(conn: Conn, clips: dict[int, SampleClip], clip_id: int, k: int = 5) -> None:
    anchor = clips[clip_id]
    click.echo(
        f"  SELECT * FROM similar_clips({clip_id}, 'trick', {k});   -- clip {clip_id} is {anchor.identifier}"
    )
    rows = conn.execute(
        query(QUERIES, "similar_clips"), {"clip_id": clip_id, "mode": "trick", "k": k}
    ).fetchall()
    for row in rows:
        other = clips[row["clip_id"]]
        mark = "same trick" if other.trick == anchor.trick else ""
        click.echo(
            f"    rank {row['rank']:>2}  clip {row['clip_id']:>3}  {row['distance']:.4f}  {other.identifier:<24} {mark}"
        )


def _sort_round(
    conn: Conn, clips: dict[int, SampleClip], screens: int, rng: random.Random
) -> tuple[int, int]:
    """One round of simulated sorting; returns (events, none-similar events)."""
    nones = 0
    for _ in range(screens):
        anchor_row = conn.execute(query(QUERIES, "next_anchor"), {"mode": "trick"}).fetchone()
        if anchor_row is None:
            raise DemoError("next_anchors('trick') proposed no anchor")
        anchor = anchor_row["clip_id"]
        # An evaluation anchor is shown candidates drawn without the live head (the gate's data).
        evaluation = anchor_row["reason"] == "evaluation"
        shown = conn.execute(
            query(QUERIES, "evaluation_candidates" if evaluation else "sorting_candidates"),
            {"anchor": anchor, "mode": "trick", "n": 8},
        ).fetchall()
        candidates = [
            (row["clip_id"], clips[row["clip_id"]].trick, row["distance"]) for row in shown
        ]
        choice = sorter.answer(clips[anchor].trick, candidates, rng)
        nones += choice.selected is None
        conn.execute(
            query(QUERIES, "insert_event"),
            {
                "anchor": anchor,
                "selected": choice.selected,
                "rejected": choice.rejected,
                "candidates": [clip_id for clip_id, _, _ in candidates],
                "mode": "trick_similarity",
                "response_time_ms": choice.response_time_ms,
                "anchor_reason": anchor_row["reason"],
                "sources": [row["source"] for row in shown],
                "rankings": json.dumps(
                    [
                        {"clip_id": r["clip_id"], "position": r["position"], "source": r["source"]}
                        for r in shown
                    ]
                ),
            },
        )
    return screens, nones


def run_demo(settings: Settings, config: DemoConfig | None = None) -> None:
    config = config or DemoConfig()
    started = time.monotonic()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    rng = random.Random(config.seed)
    home = settings.home.resolve()

    say("1/6 Database: the embedded PostgreSQL, database heaters_demo (recreated)")
    url = _demo_url(settings)
    migrations.upgrade(url, "head")
    click.echo(f"  {url} at revision {migrations.current_revision(url)}")

    say("2/6 Model")
    model_name, model_dir, frames = _model(settings)

    say("3/6 Sample clips: synthetic videos; trick = a motion pattern, spot = a scene")
    media_root = home / "demo-media"
    samples = write_sample_clips(media_root, tricks=config.tricks, spots=config.spots)
    click.echo(
        f"  wrote {len(samples)} H.264 clips ({config.tricks} tricks x {config.spots} spots) under {media_root}"
    )

    with connect(url, autocommit=True, row_factory=dict_row) as conn:
        # next_anchors mixes in random anchors (random()): seed this session so runs repeat.
        conn.execute("SELECT setseed(%s)", (rng.random() * 2 - 1,))
        variant = {"model_name": model_name, "strategy": STRATEGY, "frames": frames}
        conn.execute(query(QUERIES, "disable_other_variants"), variant)
        conn.execute(query(QUERIES, "use_variant"), variant)
        conn.execute(query(QUERIES, "demo_settings"), {"retrain_every": config.screens_per_round})
        clips = _insert_clips(conn, samples, media_root)
        click.echo(f"  inserted {len(clips)} clips: the clips trigger enqueued one embed job each")

        daemon_log = home / "demo-daemon.log"
        with _daemon(url, media_root, model_dir, daemon_log) as daemon:
            click.echo(f"  started `heaters-db daemon` (pid {daemon.pid}, log {daemon_log})")
            _wait_for_embeddings(conn, len(clips), daemon, daemon_log, config.timeout_seconds)

            example = next(iter(clips))
            say("4/6 Before any sorting: the default variant's space")
            _show_neighbours(conn, clips, example)
            before = _recall_at_k(conn, clips, config.k)
            click.echo(f"  recall@{config.k} of same-trick clips, over all clips: {before:.3f}")

            say(
                f"5/6 Sorting: {config.rounds} rounds of {config.screens_per_round} screens by the SIMULATED sorter"
            )
            for round_number in range(1, config.rounds + 1):
                _sorting_round(conn, clips, config, rng, daemon, round_number)

            say("6/6 After sorting")
            _show_neighbours(conn, clips, example)
            after = _recall_at_k(conn, clips, config.k)
            space = _serving_space(conn) or "the base space (no head passed the gate)"
            click.echo(
                f"  recall@{config.k} of same-trick clips: before {before:.3f} -> after {after:.3f} ({space})"
            )

    elapsed = time.monotonic() - started
    say(f"Done in {elapsed:.0f} s. Sort clips yourself on the same data:")
    click.echo(
        f"  HEATERS_DATABASE_URL={url} HEATERS_MEDIA_ROOT={media_root} .venv/bin/heaters-db sort"
    )
    click.echo(
        "  then open http://127.0.0.1:8000 (keys: 1-9 choose, 0 none similar, x+digit clearly wrong, s skip, z undo, t/p mode, ? help)"
    )


def _insert_clips(conn: Conn, samples: list[SampleClip], media_root: Path) -> dict[int, SampleClip]:
    """Insert the sample clips (the clips trigger enqueues their embed jobs); by clip id."""
    clips: dict[int, SampleClip] = {}
    for sample in samples:
        row = conn.execute(
            query(QUERIES, "insert_clip"),
            {
                "identifier": sample.identifier,
                "path": str(sample.path.relative_to(media_root)),
                "metadata": json.dumps({"demo_trick": sample.trick, "demo_spot": sample.spot}),
            },
        ).fetchone()
        assert row is not None  # INSERT ... RETURNING id
        clips[row["id"]] = sample
    return clips


def _wait_for_embeddings(
    conn: Conn, count: int, daemon: subprocess.Popen, daemon_log: Path, timeout: float
) -> None:
    """Show the daemon's embedding progress until `count` clips are done; then the failures."""
    with tqdm(total=count, desc="  embedding", unit="clip") as bar:
        deadline = time.monotonic() + timeout
        while True:
            row = conn.execute(query(QUERIES, "embed_progress")).fetchone()
            assert row is not None  # an aggregate
            bar.n = row["finished"]
            bar.refresh()
            if row["finished"] >= count:
                break
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise DemoError(f"embedding did not finish ({row}); see {daemon_log}")
            time.sleep(0.5)
    for failure in conn.execute(query(QUERIES, "embed_failures")).fetchall():
        click.echo(
            f"  clip {failure['clip_id']} not embedded: {failure['status']} {failure['last_error']}"
        )


def _sorting_round(
    conn: Conn,
    clips: dict[int, SampleClip],
    config: DemoConfig,
    rng: random.Random,
    daemon: subprocess.Popen,
    round_number: int,
) -> None:
    """One round: the simulated sorter's screens, the daemon's training (and re-projection of a
    head that passed), then what the gate said and the recall the library serves now."""
    events, nones = _sort_round(conn, clips, config.screens_per_round, rng)
    click.echo(
        f"  round {round_number}: {events} events inserted ({nones} 'none similar'); waiting for the daemon's training"
    )
    job = _wait(
        conn,
        query(QUERIES, "latest_train_job"),
        {"mode": "trick_similarity"},
        lambda row: row is not None and row["status"] in ("done", "skipped", "dead"),
        "the train_head job",
        config.timeout_seconds,
        daemon,
    )
    # The reproject job of a head that passed: served recall is measured after it.
    _wait(
        conn,
        query(QUERIES, "pending_reprojections"),
        {},
        lambda row: row is not None and row["pending"] == 0,
        "the reproject job",
        config.timeout_seconds,
        daemon,
    )
    head = conn.execute(query(QUERIES, "newest_head"), {"mode": "trick_similarity"}).fetchone()
    if head:
        metrics = head["metrics"] or {}
        status = "active" if head["status"] == "active" else head["status"]
        click.echo(
            f"    head v{head['version']}: {status} - gate: {metrics.get('gate', {}).get('reason', job['last_error'] or '')}"
        )
    else:
        click.echo(f"    training {job['status']}: {job['last_error']}")
    recall = _recall_at_k(conn, clips, config.k)
    serving = _serving_space(conn) or "base space"
    click.echo(f"    served recall@{config.k} after round {round_number}: {recall:.3f} ({serving})")


def _serving_space(conn: Conn) -> str | None:
    """'trick head vN' when a trick head is active, else None."""
    active = conn.execute(query(QUERIES, "active_head"), {"mode": "trick_similarity"}).fetchone()
    return f"trick head v{active['version']}" if active else None
