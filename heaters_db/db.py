"""Connections to the heaters database.

Every command uses HEATERS_DATABASE_URL (else DATABASE_URL) when set, else the embedded local
cluster under HEATERS_HOME, started on demand.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import Row

from heaters_db.errors import DatabaseUnavailable, HeatersError
from heaters_db.settings import Settings, get_settings

log = logging.getLogger(__name__)


def database_url(settings: Settings | None = None, start_local: bool = True) -> str:
    """The URL to use: the configured one, or the embedded cluster's (started if needed)."""
    settings = settings or get_settings()
    url = settings.resolved_database_url
    if url:
        return url
    from heaters_db.localdb import LocalCluster

    cluster = LocalCluster(settings.home)
    if start_local:
        return cluster.up()
    return cluster.url()


def connect(
    url: str | None = None, autocommit: bool = False, **kwargs: Any
) -> psycopg.Connection[Any]:
    """A psycopg connection with pgvector's adapters (numpy arrays <-> vector) registered."""
    url = url or database_url()
    try:
        conn = psycopg.connect(url, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {exc}".strip()) from exc
    try:
        register_vector(conn)
    except psycopg.ProgrammingError:
        # The vector extension is not installed yet (before `heaters-db migrate`).
        if not autocommit:
            conn.rollback()
    return conn


def one_row(cursor: psycopg.Cursor[Row], statement: str) -> Row:
    """The row of a statement that always returns one (an aggregate, INSERT ... RETURNING, a
    function call): a clear error naming ``statement``, not a TypeError on None, if it did not."""
    row = cursor.fetchone()
    if row is None:
        raise HeatersError(f"{statement}: expected one row, the database returned none")
    return row


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable database url>"
    if "password" in info:
        info["password"] = "***"
    return psycopg.conninfo.make_conninfo("", **info)
