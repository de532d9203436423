"""The re-runnable half of the schema: functions, views, triggers and grants.

heaters-db keeps two kinds of SQL, as procrastinate and pgai do:
- run-once deltas (tables, ALTERs, seeds, drops of old signatures), frozen inside their Alembic
  revision and never edited after a release;
- re-runnable objects, one per file under sql/ and PL/Python bodies under plpython/, listed in
  dependency order in sql/rerunnable.txt and applied again by every `heaters-db migrate`.

So an upgraded database and a fresh install end with the same catalog: both replay the same
frozen deltas, then get today's objects. A released schema keeps its own copy of the list and
the files (alembic/released/<release>.json), which a downgrade to that release re-applies.

A PL/Python function's file holds its CREATE statement with the line
``#@ plpython/<file>.py: <entry_point>(<arguments>)`` where the body goes; the loader puts in
the module (see heaters_db.schema.plpython_body), and with it the plpython/ modules it imports
(``from anchor_clustering import ...``: plpython_modules), so one body may span several files.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import psycopg

from heaters_db import catalog
from heaters_db.resources import project_root, read_released
from heaters_db.schema import plpython_body

log = logging.getLogger(__name__)

LIST_FILE = "rerunnable.txt"
PLPYTHON_LINE = re.compile(
    r"^#@ plpython/(?P<file>[\w.]+): (?P<entry>\w+)\((?P<arguments>[^)]*)\)\n", re.MULTILINE
)


SIBLING_IMPORT = re.compile(r"^(?:from (\w+) import|import (\w+))", re.MULTILINE)


def plpython_modules(
    source_file: str, source: str, read: Callable[[str], str]
) -> list[tuple[str, str]]:
    """The (file, source) of every plpython/ module that plpython/<source_file> (`source`)
    imports at the top level, directly or through another, dependencies first. An import with no
    such file (numpy, the standard library) is not one of them; an import cycle is an error (the
    modules are executed one after the other)."""
    found: dict[str, str] = {}

    def visit(text: str, trail: tuple[str, ...]) -> None:
        for match in SIBLING_IMPORT.finditer(text):
            name = f"{match[1] or match[2]}.py"
            if name in trail:
                raise ValueError(f"plpython/ import cycle: {' -> '.join((*trail, name))}")
            if name in found:
                continue
            try:
                sibling = read(f"plpython/{name}")
            except FileNotFoundError:
                continue
            visit(sibling, (*trail, name))
            found[name] = sibling

    visit(source, (source_file,))
    return list(found.items())


@dataclass(frozen=True)
class Layer:
    """One version of the re-runnable objects: today's files, or a release's archive."""

    read: Callable[[str], str]  # "sql/..." or "plpython/..." -> text

    @classmethod
    def current(cls) -> Layer:
        return cls(lambda relative: (project_root() / relative).read_text())

    @classmethod
    def released(cls, release: str) -> Layer:
        return cls(partial(read_released, release))

    def files(self) -> list[str]:
        lines = self.read(f"sql/{LIST_FILE}").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def object_sql(self, relative: str) -> str:
        """sql/<relative>, with PL/Python bodies put in."""

        def body(match: re.Match) -> str:
            source = self.read(f"plpython/{match['file']}")
            modules = plpython_modules(match["file"], source, self.read)
            return plpython_body(match["file"], source, match["entry"], match["arguments"], modules)

        return PLPYTHON_LINE.sub(body, self.read(f"sql/{relative}"))


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
