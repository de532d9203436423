"""Shared fixtures: a real PostgreSQL (pgvector + plpython3u) for the whole session, a template
database migrated once, and a fresh copy of it for each test (CREATE DATABASE ... TEMPLATE).

The server is heaters-db's own embedded cluster (heaters_db.localdb), started in a temp dir; as
root it runs as the `postgres` user. Set HEATERS_TEST_SERVER_URL (a superuser URL to a server with
pgvector and plpython3u) to use an existing server instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from heaters_db import migrations
from heaters_db.db import connect
from heaters_db.localdb import LocalCluster

TEMPLATE_DB = "heaters_test_template"

# No test may wait on the model hub (there is no network for weights): fail fast instead.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class PgServer:
    host: str
    port: int
    user: str
    cluster: LocalCluster | None = None

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def janitor(self, dbname: str, **kwargs) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.user, host=self.host, port=self.port, dbname=dbname, **kwargs
        )


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    external = os.environ.get("HEATERS_TEST_SERVER_URL")
    if external:
        info = psycopg.conninfo.conninfo_to_dict(external)
        yield PgServer(
            info.get("host", "127.0.0.1"), int(info.get("port", 5432)), info.get("user", "postgres")
        )
        return
    cluster = LocalCluster(tmp_path_factory.mktemp("pg"), fast_unsafe=True)
    cluster.up()
    try:
        yield PgServer("127.0.0.1", cluster.port, "heaters", cluster)
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def migrated_template(pg_server: PgServer) -> Iterator[str]:
    """A database migrated to head once per session; tests get copies of it."""
    janitor = pg_server.janitor(TEMPLATE_DB, as_template=True)
    janitor.drop()
    janitor.init()
    migrations.upgrade(pg_server.url(TEMPLATE_DB), "head")
    yield TEMPLATE_DB
    janitor.drop()


def _fresh_database(pg_server: PgServer, template: str | None) -> Iterator[str]:
    dbname = f"test_{uuid.uuid4().hex[:12]}"
    janitor = pg_server.janitor(dbname, template_dbname=template)
    janitor.init()
    try:
        yield pg_server.url(dbname)
    finally:
        janitor.drop()


@pytest.fixture
def db_url(pg_server: PgServer, migrated_template: str) -> Iterator[str]:
    """URL of a new database at migration head, private to this test."""
    yield from _fresh_database(pg_server, migrated_template)


@pytest.fixture
def empty_db_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a new, empty database (no heaters-db schema), private to this test."""
    yield from _fresh_database(pg_server, None)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database, with pgvector adapters."""
    with connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def other_empty_db_url(pg_server: PgServer) -> Iterator[str]:
    """A second new, empty database, for tests that compare two."""
    yield from _fresh_database(pg_server, None)
