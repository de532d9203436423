"""Set-up shared by the daemon tests (tests/integration/test_daemon.py, test_daemon_faults.py):
settings with short leases, a daemon in a thread, a cluster of a test's own, and the waits that
tell where a daemon is."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from heaters_db import migrations
from heaters_db.localdb import LocalCluster
from heaters_db.settings import Settings
from heaters_db.worker import Worker
from tests.integration.conftest import (
    DaemonProcess,
    MediaRoot,
    embedding_count,
    insert_clips,
    job_rows,
    use_tiny_variant,
    wait_until,
)

StartDaemon = Callable[..., DaemonProcess]
DAEMON_START_TIMEOUT = 120  # importing torch + transformers on a busy 2-core machine


def settings_for(db_url: str, model_dir: Path, media: MediaRoot, **overrides: object) -> Settings:
    """What in-process daemons run with: cpu, 5 s leases, 0.2 s polls."""
    values: dict[str, object] = dict(
        database_url=db_url,
        model_dir=model_dir,
        media_root=media.root,
        device="cpu",
        lease_seconds=5,
        poll_seconds=0.2,
    )
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def run_in_thread(daemon: Worker) -> threading.Thread:
    thread = threading.Thread(target=daemon.run, name="test-daemon", daemon=True)
    thread.start()
    return thread


@contextmanager
def own_cluster(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[tuple[LocalCluster, str]]:
    """A migrated cluster of the test's own (to restart or stop), with the tiny default
    variant; destroyed after."""
    cluster = LocalCluster(tmp_path_factory.mktemp(name), fast_unsafe=True)
    url = cluster.up()
    try:
        migrations.upgrade(url, "head")
        with psycopg.connect(url, autocommit=True) as conn:
            use_tiny_variant(conn)
        yield cluster, url
    finally:
        cluster.destroy()


def embed_and_wait(
    conn: psycopg.Connection, media: MediaRoot, name: str, daemon: DaemonProcess, timeout: float
) -> int:
    """A new clip with a good video; returns its id once the daemon embedded it."""
    (clip_id,) = insert_clips(conn, [media.good(name)])
    wait_until(
        lambda: embedding_count(conn, [clip_id]),
        timeout,
        what=lambda: f"clip {name} to be embedded\n{daemon.log()}",
    )
    return clip_id


def blocked_on_lock(conn: psycopg.Connection) -> bool:
    """Some daemon backend waits for a row lock (its embedding insert)."""
    return bool(
        conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND application_name LIKE 'heaters-db %'"
        ).fetchone()
    )


def wait_for_daemons(conn: psycopg.Connection, count: int) -> None:
    """Until `count` daemons are connected (each shows its worker id in application_name)."""
    wait_until(
        lambda: (
            conn.execute(
                "SELECT count(DISTINCT application_name) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE 'heaters-db %'"
            ).fetchone()[0]
            == count
        ),
        DAEMON_START_TIMEOUT,
        what=f"{count} daemons to connect",
    )


def statuses(conn: psycopg.Connection) -> dict[int, str]:
    return dict(conn.execute("SELECT id, status FROM pipeline_jobs ORDER BY id").fetchall())


def jobs_by_id(conn: psycopg.Connection) -> dict[int, dict]:
    return {row["id"]: row for row in job_rows(conn)}


@dataclass
class DaemonDb:
    """What a daemon test runs against: the test's database (a fresh copy, with the tiny
    default variant), the media root, the tiny model, and a starter for daemon processes."""

    url: str
    conn: psycopg.Connection
    variant: int
    model_dir: Path
    media: MediaRoot
    start: StartDaemon

    def settings(self, **overrides: object) -> Settings:
        return settings_for(self.url, self.model_dir, self.media, **overrides)


@pytest.fixture(name="env")
def daemon_env(
    db_url: str,
    conn: psycopg.Connection,
    tiny_variant: int,
    tiny_model_dir: Path,
    media_root: MediaRoot,
    start_daemon: StartDaemon,
) -> DaemonDb:
    """The `env` fixture; a test module imports it (`daemon_env`) to use it."""
    return DaemonDb(db_url, conn, tiny_variant, tiny_model_dir, media_root, start_daemon)
