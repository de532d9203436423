"""Finds the project's SQL, PL/Python and migration files.

They live at the repository's top level (sql/, plpython/, alembic/); a wheel carries them under
heaters_db/_bundled/ (see pyproject.toml). An editable install reads them from the checkout.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def project_root() -> Path:
    bundled = _PACKAGE_DIR / "_bundled"
    if (bundled / "sql").is_dir():
        return bundled
    return _PACKAGE_DIR.parent


def sql_path(relative: str) -> Path:
    return project_root() / "sql" / relative


def read_sql(relative: str) -> str:
    """The text of ``sql/<relative>``."""
    return sql_path(relative).read_text()


def plpython_path(name: str) -> Path:
    return project_root() / "plpython" / name


def alembic_ini_path() -> Path:
    return project_root() / "alembic.ini"


def alembic_dir() -> Path:
    return project_root() / "alembic"


@cache
def _released_files(release: str) -> dict[str, str]:
    archive = alembic_dir() / "released" / f"{release}.json"
    return json.loads(archive.read_text())["files"]


def read_released(release: str, relative: str) -> str:
    """A file (``sql/...`` or ``plpython/...``) of a released schema, frozen in
    alembic/released/<release>.json: an archive that is read, never edited."""
    try:
        return _released_files(release)[relative]
    except KeyError:
        raise FileNotFoundError(f"{relative} is not in the {release} release archive") from None
