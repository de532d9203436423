"""Runs the Alembic migrations in alembic/ against a database URL."""

from __future__ import annotations

import logging

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, pool

from heaters_db.errors import MigrationError
from heaters_db.resources import alembic_dir, alembic_ini_path

log = logging.getLogger(__name__)

VERSION_TABLE = "heaters_db_alembic_version"


def sqlalchemy_url(url: str) -> str:
    """Alembic goes through SQLAlchemy; point it at the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    # A libpq keyword/value string ("host=... dbname=..."): pass it through the query string.
    return "postgresql+psycopg:///?" + "&".join(url.split())


def alembic_config(url: str) -> Config:
    config = Config(str(alembic_ini_path()))
    config.set_main_option("script_location", str(alembic_dir()))
    # ConfigParser interpolation: a literal % must be doubled.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    log.info("migrating up to %s", revision, extra={"action": "migrate"})
    try:
        command.upgrade(alembic_config(url), revision)
    except Exception as exc:  # alembic wraps driver errors in many types
        raise MigrationError(f"upgrade to {revision} failed: {exc}") from exc


def downgrade(url: str, revision: str) -> None:
    log.info("migrating down to %s", revision, extra={"action": "migrate"})
    try:
        command.downgrade(alembic_config(url), revision)
        if revision == "base":
            # Alembic keeps its (now empty) version table; `base` means nothing of heaters-db stays.
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {VERSION_TABLE}")
    except Exception as exc:
        raise MigrationError(f"downgrade to {revision} failed: {exc}") from exc


def current_revision(url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("postgresql://"))
    return script.get_current_head()


def migrate(url: str, revision: str = "head") -> None:
    """`heaters-db migrate [REVISION]`: up to head (default) or a revision; `base` removes heaters-db."""
    if revision == "head":
        upgrade(url, "head")
        return
    current = current_revision(url)
    script = ScriptDirectory.from_config(alembic_config(url))
    if revision == "base":
        downgrade(url, "base")
        return
    try:
        target = script.get_revision(revision)
    except CommandError:  # alembic raises for a name it cannot resolve
        target = None
    if target is None:
        raise MigrationError(f"unknown revision {revision!r}")
    ancestors = (
        {r.revision for r in script.iterate_revisions(current, "base")} if current else set()
    )
    if revision in ancestors and revision != current:
        downgrade(url, revision)
    else:
        upgrade(url, revision)
