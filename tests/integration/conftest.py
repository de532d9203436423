"""Fixtures for tests that run the embed path against real PostgreSQL, real H.264 files and the
tiny V-JEPA 2: a model directory, a media root with good and broken clips, a tiny default
variant, and daemons started as real `heaters-db daemon` processes.

Everything is small on purpose (64x64 videos, 8 frames, 32-px crops, short leases and poll
intervals) so a daemon test takes seconds, most of it spent importing torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support import videos
from tests.support.tiny_model import TINY_MODEL_NAME, install_tiny_model

TINY_FRAMES = 8
TINY_DIM = 32
HEATERS_DB = Path(sys.executable).with_name("heaters-db")

# Broken inputs the daemon must survive: name -> writer (None: the file is never created).
BAD_CLIPS: dict[str, Callable[[Path], Path] | None] = {
    "missing.mp4": None,
    "zero.mp4": videos.write_zero_byte,
    "truncated.mp4": videos.write_truncated,
    "text.mp4": videos.write_text_file,
    "audio.mp4": videos.write_audio_only,
}


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str | Callable[[], str] = "",
) -> object:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds.

    `what` describes the wait in the failure message; a callable is called only then (e.g. to
    attach a daemon's log as it is at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            description = what() if callable(what) else what
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {description or predicate}"
            )
        time.sleep(interval)


@dataclass
class MediaRoot:
    """HEATERS_MEDIA_ROOT for tests: clips are written once per session, on demand."""

    root: Path

    def good(self, name: str, **options: object) -> str:
        """A real H.264 clip (64x64, 16 frames); returns its heaters-style key `clips/<name>`."""
        path = self.root / "clips" / name
        if not path.exists():
            options = {"num_frames": 16, "size": (64, 64)} | options
            videos.write_video(path, **options)
        return f"clips/{name}"

    def bad(self, name: str) -> str:
        """One of BAD_CLIPS; returns its key."""
        writer = BAD_CLIPS[name]
        path = self.root / "clips" / name
        if writer is not None and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            writer(path)
        return f"clips/{name}"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HEATERS_MODEL_DIR holding `heaters/vjepa2-tiny` (saved with save_pretrained)."""
    models = tmp_path_factory.mktemp("models")
    install_tiny_model(models)
    return models


@pytest.fixture(scope="session")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> MediaRoot:
    return MediaRoot(tmp_path_factory.mktemp("media"))


def use_tiny_variant(conn: psycopg.Connection, num_frames: int = TINY_FRAMES) -> int:
    """Make ('heaters/vjepa2-tiny', 'video_full_clip', num_frames) the only enabled, default
    variant (the seeded ViT-L one is switched off); returns its id."""
    conn.execute("UPDATE embedding_variants SET is_default = false, enabled = false")
    return conn.execute(
        "INSERT INTO embedding_variants (model_name, generation_strategy, num_frames, is_default) "
        "VALUES (%s, 'video_full_clip', %s, true) RETURNING id",
        (TINY_MODEL_NAME, num_frames),
    ).fetchone()[0]


@pytest.fixture
def tiny_variant(conn: psycopg.Connection) -> int:
    return use_tiny_variant(conn)


def insert_clips(conn: psycopg.Connection, keys: list[str]) -> list[int]:
    """Insert clips in ONE statement (one trigger run, one NOTIFY); ids in the order given."""
    rows = conn.execute(
        "INSERT INTO clips (clip_identifier, clip_filepath) "
        "SELECT 'clip-' || ord, key FROM unnest(%s::text[]) WITH ORDINALITY AS t(key, ord) "
        "ORDER BY ord RETURNING id",
        (keys,),
    ).fetchall()
    return [row[0] for row in rows]


def daemon_environment(
    database_url: str, model_dir: Path, media: MediaRoot, home: Path, **overrides: str
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HEATERS_DATABASE_URL=database_url,
        HEATERS_MODEL_DIR=str(model_dir),
        HEATERS_MEDIA_ROOT=str(media.root),
        HEATERS_HOME=str(home),
        HEATERS_DEVICE="cpu",
        HEATERS_BATCH_SIZE="4",
        HEATERS_LEASE_SECONDS="5",
        HEATERS_POLL_SECONDS="0.5",
        HEATERS_RETRY_DELAY_SECONDS="30",
        HEATERS_LOG_LEVEL="INFO",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("DATABASE_URL", None)
    env.update(overrides)
    return env


@dataclass
class DaemonProcess:
    """A `heaters-db daemon` subprocess with its log file."""

    process: subprocess.Popen
    log_path: Path
    _log_file: object = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"daemon {self.pid} did not exit; log:\n{self.log()}") from None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()


@pytest.fixture
def start_daemon(
    tmp_path: Path, tiny_model_dir: Path, media_root: MediaRoot
) -> Iterator[Callable[..., DaemonProcess]]:
    """start_daemon(database_url, *args, **env) -> DaemonProcess; every one is stopped after."""
    started: list[DaemonProcess] = []

    def start(database_url: str, *args: str, **env: str) -> DaemonProcess:
        log_path = tmp_path / f"daemon-{len(started)}.log"
        log_file = open(log_path, "w")  # noqa: SIM115 - closed in DaemonProcess.stop
        environment = daemon_environment(
            database_url, tiny_model_dir, media_root, tmp_path / "home", **env
        )
        process = subprocess.Popen(
            [str(HEATERS_DB), "daemon", *args],
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        daemon = DaemonProcess(process, log_path, log_file)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def job_rows(conn: psycopg.Connection) -> list[dict]:
    """Every job, as dicts ordered by id."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM pipeline_jobs ORDER BY id")
        return cur.fetchall()


def embedding_count(conn: psycopg.Connection, clip_ids: list[int] | None = None) -> int:
    if clip_ids is None:
        return conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    return conn.execute(
        "SELECT count(*) FROM embeddings WHERE clip_id = ANY (%s)", (clip_ids,)
    ).fetchone()[0]


def settled(conn: psycopg.Connection, job_ids: list[int] | None = None) -> bool:
    """No job (of these) is queued-and-runnable or running; failed ones wait in backoff."""
    return not conn.execute(
        "SELECT 1 FROM pipeline_jobs WHERE (status = 'running' OR (status = 'queued' AND "
        "attempts = 0)) AND (%s::integer[] IS NULL OR id = ANY (%s::integer[])) LIMIT 1",
        (job_ids, job_ids),
    ).fetchone()
