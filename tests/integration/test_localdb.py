"""`heaters-db db up | status | url | down` on a fresh embedded cluster under a temp HEATERS_HOME,
and migrations on that fresh cluster, where heaters-db itself creates (and removes) its role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from heaters_db import migrations
from heaters_db.localdb import ROOT_FALLBACK_DIR, LocalCluster


def command(home: Path, *args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("heaters-db")), *args]


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HEATERS_DATABASE_URL")}
    return env | {"HEATERS_HOME": str(home), "HEATERS_LOG_LEVEL": "WARNING"}


def heaters_db(home: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command(home, *args), env=environment(home), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == expect, result.stderr
    return result


def count(conn: psycopg.Connection, sql: str) -> int:
    return conn.execute(sql).fetchone()[0]


SORTER_ROLES = "SELECT count(*) FROM pg_roles WHERE rolname = 'heaters_sorter'"
WORKER_ROLES = "SELECT count(*) FROM pg_roles WHERE rolname = 'heaters_worker'"


@pytest.fixture
def home(tmp_path: Path):
    home = tmp_path / "heaters home"
    yield home
    LocalCluster(home).destroy()


def test_db_commands_on_a_fresh_cluster(home: Path) -> None:
    url = heaters_db(home, "db", "up").stdout.strip()
    password = (home / "password").read_text().strip()
    assert len(password) >= 32
    assert (home / "password").stat().st_mode & 0o777 == 0o600
    assert url.startswith(f"postgresql://heaters:{password}@127.0.0.1:")

    status = json.loads(heaters_db(home, "db", "status").stdout)
    assert status["running"] is True and status["initialized"] is True
    assert status["url"] == url and status["home"] == str(home)
    data_dir = Path(status["data_dir"])
    assert (data_dir / "PG_VERSION").exists()
    if os.geteuid() == 0:
        # Run as the postgres user, which cannot enter a root-only temp dir: the fallback.
        assert data_dir == home / "pgdata" or data_dir.parent == ROOT_FALLBACK_DIR
    else:
        assert data_dir == home / "pgdata"
    assert heaters_db(home, "db", "url").stdout.strip() == url

    # scram-sha-256, not trust: without the password (or with another) nobody gets in.
    without_password = url.replace(f":{password}@", "@")
    for wrong in (without_password, url.replace(password, "not-the-password")):
        with pytest.raises(
            psycopg.OperationalError, match="password authentication failed|no password supplied"
        ):
            psycopg.connect(wrong, connect_timeout=10).close()

    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "heaters"
        rules = conn.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules").fetchall()
        assert rules == [("scram-sha-256",)]
        assert count(conn, SORTER_ROLES) == 0
        assert count(conn, WORKER_ROLES) == 0
        # A brand-new cluster: heaters-db creates its roles, and `base` removes them again.
        migrations.upgrade(url)
        assert count(conn, SORTER_ROLES) == 1
        assert count(conn, WORKER_ROLES) == 1
        migrations.migrate(url, "base")
        assert count(conn, SORTER_ROLES) == 0
        assert count(conn, WORKER_ROLES) == 0
        assert (
            count(conn, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
            == 0
        )
        assert count(conn, "SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'") == 0

    assert heaters_db(home, "db", "down").stdout.strip() == "stopped"
    cluster = LocalCluster(home)
    assert cluster.status()["running"] is False
    assert cluster.down() is False  # what `db down` reports as "not running"


def test_two_db_up_at_once_make_one_cluster_both_can_use(home: Path) -> None:
    # Both ran initdb: the password file then held the password of the initdb that lost, and
    # no URL ever opened the cluster again.
    starts = [
        subprocess.Popen(
            command(home, "db", "up"),
            env=environment(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [start.communicate(timeout=180) for start in starts]
    assert [start.returncode for start in starts] == [0, 0], outputs
    first, second = (stdout.strip() for stdout, _ in outputs)
    assert first == second
    with psycopg.connect(first, connect_timeout=10) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("heaters",)


def test_a_stale_pid_file_whose_pid_was_reused_does_not_pass_for_a_server(home: Path) -> None:
    """The server died without removing postmaster.pid and its PID now belongs to another
    program: pg_ctl called that running, so `db up` printed a URL to nothing and `db down`
    waited a minute for a server that was not there."""
    url = heaters_db(home, "db", "up").stdout.strip()
    cluster = LocalCluster(home)
    pid_file = cluster.data_dir / "postmaster.pid"
    lines = pid_file.read_text().split("\n")
    heaters_db(home, "db", "down")
    impostor = subprocess.Popen(["sleep", "300"])
    try:
        pid_file.write_text("\n".join([str(impostor.pid), *lines[1:]]))
        assert json.loads(heaters_db(home, "db", "status").stdout)["running"] is False
        assert heaters_db(home, "db", "down").stdout.strip() == "not running"
        started = heaters_db(home, "db", "up")
        assert started.stdout.strip() == url
        assert "removing a stale postmaster.pid" in started.stderr
        with psycopg.connect(url, connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert impostor.poll() is None  # the other program is left alone
    finally:
        impostor.kill()
        impostor.wait()


@pytest.mark.parametrize("place", ["/proc/heaters-db-home", "a file"])
def test_an_unusable_heaters_home_is_a_clear_error(tmp_path: Path, place: str) -> None:
    home = Path(place) if place.startswith("/") else tmp_path / place
    if not place.startswith("/"):
        home.write_text("not a directory")
    failed = heaters_db(home, "db", "up", expect=1)
    assert f"HEATERS_HOME {home} cannot hold the local cluster" in failed.stderr
    assert "Traceback" not in failed.stderr
