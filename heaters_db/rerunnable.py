"""The re-runnable half of the schema: functions, views, triggers and grants.

heaters-db keeps two kinds of SQL, as procrastinate and pgai do:
- run-once deltas (tables, ALTERs, seeds, drops of old signatures), frozen inside their Alembic
  revision and never edited after a release;
- re-runnable objects, one per file under sql/ and PL/Python bodies under plpython/, listed in
  dependency order in sql/rerunnable.txt and applied again by every `heaters-db migrate`.

So an upgraded database and a fresh install end with the same catalog: both replay the same
frozen deltas, then get today's objects. A released schema keeps its own copy of the list and
the files (alembic/released/<release>/), which a downgrade to that release re-applies.

A PL/Python function's file holds its CREATE statement with the line
``#@ plpython/<file>.py: <entry_point>(<arguments>)`` where the body goes; the loader puts in
the module (see heaters_db.schema.plpython_body).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from heaters_db import catalog
from heaters_db.resources import project_root, released_path
from heaters_db.schema import plpython_body

log = logging.getLogger(__name__)

LIST_FILE = "rerunnable.txt"
PLPYTHON_LINE = re.compile(
    r"^#@ plpython/(?P<file>[\w.]+): (?P<entry>\w+)\((?P<arguments>[^)]*)\)\n", re.MULTILINE
)


@dataclass(frozen=True)
class Layer:
    """Where one version of the re-runnable objects lives: today's, or a release's."""

    sql_dir: Path
    plpython_dir: Path

    @classmethod
    def current(cls) -> Layer:
        return cls(project_root() / "sql", project_root() / "plpython")

    @classmethod
    def released(cls, release: str) -> Layer:
        return cls(released_path(release, "sql"), released_path(release, "plpython"))

    def files(self) -> list[str]:
        lines = (self.sql_dir / LIST_FILE).read_text().splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def object_sql(self, relative: str) -> str:
        """The file's SQL, with PL/Python bodies put in."""
        text = (self.sql_dir / relative).read_text()

        def body(match: re.Match) -> str:
            source = (self.plpython_dir / match["file"]).read_text()
            return plpython_body(match["file"], source, match["entry"], match["arguments"])

        return PLPYTHON_LINE.sub(body, text)


def apply(conn: psycopg.Connection, layer: Layer | None = None) -> list[catalog.Change]:
    """Apply every re-runnable object in order, in the caller's transaction; return what changed.

    What changed is read from the catalog before and after, so an object that is already as its
    file says is reported as unchanged even though it was re-created.
    """
    layer = layer or Layer.current()
    before = catalog.schema_catalog(conn, catalog.RERUNNABLE_KINDS)
    for relative in layer.files():
        try:
            conn.execute(layer.object_sql(relative))
        except psycopg.Error as exc:
            raise RuntimeError(f"sql/{relative}: {exc}") from exc
    after = catalog.schema_catalog(conn, catalog.RERUNNABLE_KINDS)
    return catalog.diff(before, after)
