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


def heaters_db(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HEATERS_DATABASE_URL")}
    env |= {"HEATERS_HOME": str(home), "HEATERS_LOG_LEVEL": "WARNING"}
    script = Path(sys.executable).with_name("heaters-db")
    result = subprocess.run(
        [str(script), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
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
