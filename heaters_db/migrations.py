"""Brings a database's schema to a revision: the Alembic revisions in alembic/ (run-once deltas),
then the re-runnable objects (heaters_db.rerunnable), so an upgraded database and a fresh
install end with the same catalog. `check` says what a migrate would do, and does nothing."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Concatenate, ParamSpec, TypeVar

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, pool

from heaters_db import downgrade_losses, rerunnable
from heaters_db.catalog import Change
from heaters_db.errors import MigrationError
from heaters_db.queries import query
from heaters_db.resources import alembic_dir, alembic_ini_path

log = logging.getLogger(__name__)

VERSION_TABLE = "heaters_db_alembic_version"
# One migrate at a time per database (a session advisory lock; the key is scoped to the
# database). Three `heaters-db migrate` started together on an empty database (several daemons'
# start-up steps) were measured without it: all but one failed, on "relation
# heaters_db_alembic_version already exists" or half-way, "expected to match one row when
# updating '0006' to '0007'". Behind a connection pooler in transaction mode a session lock does
# not hold: run migrate on a direct connection.
MIGRATE_LOCK = "heaters_db.migrate"
_held_locks: ContextVar[frozenset[str]] = ContextVar("migrate_locks_held", default=frozenset())
P = ParamSpec("P")
R = TypeVar("R")
# The last revision of each release: a downgrade to it re-applies that release's objects.
RELEASE_OF_REVISION = {"0011": "0.1.0"}


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


@contextmanager
def exclusive(url: str) -> Iterator[None]:
    """Hold the database's migrate lock (waiting, and saying so, while another holds it).
    Re-entrant within this process: migrate() holds it around the upgrade() it calls."""
    held = _held_locks.get()
    if url in held:
        yield
        return
    token = _held_locks.set(held | {url})
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            lock = "SELECT pg_try_advisory_lock(hashtext(%s))"
            row = conn.execute(lock, (MIGRATE_LOCK,)).fetchone()
            if not (row and row[0]):
                log.warning(
                    "another heaters-db migrate is running on this database; waiting for it",
                    extra={"action": "migrate_wait"},
                )
                conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (MIGRATE_LOCK,))
            try:
                yield
            finally:
                # Closing the session would release it too; unlocking says so in the server log.
                if not conn.closed:
                    conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (MIGRATE_LOCK,))
    finally:
        _held_locks.reset(token)


def one_at_a_time(function: Callable[Concatenate[str, P], R]) -> Callable[Concatenate[str, P], R]:
    """Run a schema operation on `url` (its first argument) under the database's migrate lock."""

    @functools.wraps(function)
    def locked(url: str, *args: P.args, **kwargs: P.kwargs) -> R:
        with exclusive(url):
            return function(url, *args, **kwargs)

    return locked


@one_at_a_time
def upgrade(url: str, revision: str = "head") -> list[Change]:
    """Alembic up to `revision`; at head, then every re-runnable object. Returns what they changed."""
    log.info("migrating up to %s", revision, extra={"action": "migrate"})
    try:
        command.upgrade(alembic_config(url), revision)
    except Exception as exc:  # alembic wraps driver errors in many types
        raise MigrationError(f"upgrade to {revision} failed: {exc}") from exc
    if revision == "head" or revision == head_revision():
        changes = apply_rerunnable(url)
        warn_about_settings(url)
        return changes
    return []


def warn_about_settings(url: str) -> None:
    """Name the stored settings whose values their rule refuses: migrate keeps an operator's
    value as it is (revision 0024), but its readers may fail on it."""
    with psycopg.connect(url) as conn:
        for name, problem in conn.execute(query("settings.sql", "settings_outside_rules")):
            log.warning(
                "setting %s %s: set a valid value (UPDATE heaters_db_settings SET value = ... "
                "WHERE name = %r)",
                name,
                problem,
                name,
                extra={"action": "migrate", "setting": name},
            )


def apply_rerunnable(url: str, layer: rerunnable.Layer | None = None, dry_run: bool = False):
    """Re-apply the re-runnable objects in one transaction; rolled back when `dry_run`."""
    with psycopg.connect(url) as conn:
        try:
            changes = rerunnable.apply(conn, layer)
        except RuntimeError as exc:
            raise MigrationError(
                f"re-applying functions, views and triggers failed: {exc}"
            ) from exc
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    for change in changes:
        log.info("%s", change, extra={"action": "migrate", "dry_run": dry_run})
    return changes


@one_at_a_time
def check(url: str, revision: str = "head") -> tuple[list[str], list[Change]]:
    """(revision steps, objects that differ from their files): what migrate would do.

    The steps: "revision R not applied" for each revision an upgrade to ``revision`` would
    apply, "revision R would be undone" for each a downgrade would undo. At head, the
    comparison applies the files inside a transaction and rolls it back, so what is reported
    is exactly what Postgres would change, and nothing is changed. It waits for a running
    migrate, whose half-applied objects it would otherwise report (or collide with)."""
    current = current_revision(url)
    script = ScriptDirectory.from_config(alembic_config(url))
    if revision not in ("head", "heads"):
        return _steps_to(script, current, revision), []
    pending = [
        f"revision {r.revision} not applied"
        for r in script.iterate_revisions("heads", current or "base")
    ]
    if current is None or pending:
        return list(reversed(pending)), []
    return [], apply_rerunnable(url, dry_run=True)


@one_at_a_time
def downgrade(url: str, revision: str) -> None:
    log.info("migrating down to %s", revision, extra={"action": "migrate"})
    try:
        command.downgrade(alembic_config(url), revision)
    except Exception as exc:
        raise MigrationError(f"downgrade to {revision} failed: {exc}") from exc
    if revision == "base":
        # Alembic keeps its (now empty) version table; `base` means nothing of heaters-db stays.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {VERSION_TABLE}")
        return
    release = RELEASE_OF_REVISION.get(revision)
    if release is not None:
        # The objects in place are today's; the release's own ones fit its tables again.
        apply_rerunnable(url, rerunnable.Layer.released(release))
    else:
        log.warning(
            "revision %s is not the last of a release: functions, views and triggers stay as "
            "they were; migrate to head or to a release's last revision",
            revision,
            extra={"action": "migrate"},
        )


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
    head = script.get_current_head()
    if head is None:
        raise MigrationError("alembic/versions holds no revision")
    return head


@one_at_a_time  # the current revision read below stays true until the move
def migrate(url: str, revision: str = "head", drop_data: bool = False) -> list[Change]:
    """`heaters-db migrate [REVISION]`: up to head (default) or a revision; `base` removes
    heaters-db. A downgrade that would delete sorting events, heads or embeddings
    (heaters_db.downgrade_losses) is refused, and nothing changes, unless ``drop_data``."""
    if revision == "head":
        return upgrade(url, "head")
    current = current_revision(url)
    script = ScriptDirectory.from_config(alembic_config(url))
    if revision == "base":
        if current is not None and not drop_data:
            _refuse_losing_data(url, script, current, revision)
        downgrade(url, "base")
        return []
    target = _known_revision(script, revision)
    if _is_downgrade(script, current, target):
        assert current is not None
        if not drop_data:
            _refuse_losing_data(url, script, current, target)
        downgrade(url, target)
        return []
    return upgrade(url, revision)


def _known_revision(script: ScriptDirectory, revision: str) -> str:
    """The revision id ``revision`` names, or MigrationError."""
    try:
        target = script.get_revision(revision)
    except CommandError:  # alembic raises for a name it cannot resolve
        target = None
    if target is None:
        raise MigrationError(f"unknown revision {revision!r}")
    return str(target.revision)


def _is_downgrade(script: ScriptDirectory, current: str | None, target: str) -> bool:
    """Whether moving from ``current`` to ``target`` undoes revisions (target is an ancestor)."""
    if current is None or current == target:
        return False
    return target in {r.revision for r in script.iterate_revisions(current, "base")}


def _steps_to(script: ScriptDirectory, current: str | None, revision: str) -> list[str]:
    """What `migrate REVISION` would apply or undo from ``current`` (None: nothing applied)."""
    if revision == "base":
        undone = script.iterate_revisions(current, "base") if current else []
        return [f"revision {r.revision} would be undone" for r in undone]
    target = _known_revision(script, revision)
    if current == target:
        return []
    if _is_downgrade(script, current, target):
        undone = script.iterate_revisions(current, target)
        return [f"revision {r.revision} would be undone" for r in undone]
    applied = script.iterate_revisions(target, current or "base")
    return [f"revision {r.revision} not applied" for r in reversed(list(applied))]


def _refuse_losing_data(url: str, script: ScriptDirectory, current: str, target: str) -> None:
    undone = [r.revision for r in script.iterate_revisions(current, target)]
    with psycopg.connect(url) as conn:
        lost = downgrade_losses.losses(conn, undone)
    if lost:
        raise MigrationError(
            f"a downgrade to {target} would delete {'; '.join(map(str, lost))}. Nothing was "
            "changed. Copy out what you need (e.g. COPY clip_sorting_events TO ...), then run it "
            "again with --drop-data"
        )
