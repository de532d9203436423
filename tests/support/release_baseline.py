"""Released schemas as SQL dumps, for the upgrade test (tests/integration/test_schema_upgrade.py).

A baseline is what a database looked like after `heaters-db migrate` with a release's own code:
an empty database, and a heaters-shaped one (tests/support/heaters_schema.sql), each dumped with
pg_dump into tests/fixtures/baseline-<release>-<kind>.sql.gz. The dumps are committed, so the test
runs offline and does not depend on git; this module rebuilds them from the release's commit
(git archive, run with today's .venv), which needs only the local git history:

    .venv/bin/python -m tests.support.release_baseline 0.1.0

`load_baseline` restores one into an empty database with psql.
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import psycopg

from heaters_db.localdb import LocalCluster
from tests.support.heaters_schema import create_heaters_schema

RELEASES = {"0.1.0": "7243173"}
KINDS = ("empty", "heaters")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def baseline_path(release: str, kind: str) -> Path:
    return FIXTURES / f"baseline-{release}-{kind}.sql.gz"


def _psql_env(url: str) -> tuple[list[str], dict[str, str]]:
    return ["--dbname", url], dict(os.environ, PGOPTIONS="-c client_min_messages=warning")


def load_baseline(url: str, release: str, kind: str) -> None:
    """Restore a released schema (with its version table and seed rows) into an empty database."""
    with psycopg.connect(url, autocommit=True) as conn:
        # Roles are cluster-wide, so a dump cannot carry them: the grants need the role.
        conn.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heaters_sorter') "
            "THEN CREATE ROLE heaters_sorter NOLOGIN; END IF; END $$"
        )
    args, env = _psql_env(url)
    subprocess.run(
        ["psql", "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", *args],
        input=gzip.decompress(baseline_path(release, kind).read_bytes()),
        env=env, check=True, capture_output=True,
    )  # fmt: skip


def _export_release(commit: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def build(release: str) -> None:
    """Migrate an empty and a heaters-shaped database with the release's code; dump both."""
    FIXTURES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="heaters-baseline-", dir="/tmp") as scratch:
        source = Path(scratch, "release")
        _export_release(RELEASES[release], source)
        cluster = LocalCluster(Path(scratch, "pg"), fast_unsafe=True)
        cluster.up()
        try:
            for kind in KINDS:
                url = cluster.url().rsplit("/", 1)[0] + f"/baseline_{kind}"
                with psycopg.connect(cluster.url(), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE baseline_{kind}")
                if kind == "heaters":
                    with psycopg.connect(url, autocommit=True) as conn:
                        create_heaters_schema(conn)
                # The release's own package, not today's: its migrations read its own files.
                subprocess.run(
                    [sys.executable, "-c",
                     "import sys; from heaters_db import migrations; migrations.upgrade(sys.argv[1])",
                     url],
                    cwd=source, env=dict(os.environ, PYTHONPATH=str(source)), check=True,
                )  # fmt: skip
                dump = subprocess.run(
                    ["pg_dump", "--no-owner", "--dbname", url],
                    check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
                header = (
                    f"-- heaters-db {release} (commit {RELEASES[release]}), {kind} database "
                    "after `heaters-db migrate`.\n-- Rebuilt by "
                    f"`python -m tests.support.release_baseline {release}`; do not edit.\n"
                )
                # mtime=0: the same dump gives the same bytes, so a rebuild shows no diff.
                compressed = gzip.compress((header + dump).encode(), mtime=0)
                baseline_path(release, kind).write_bytes(compressed)
                print(f"wrote {baseline_path(release, kind)}")
        finally:
            cluster.destroy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release", choices=sorted(RELEASES))
    build(parser.parse_args().release)
