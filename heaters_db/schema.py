"""Helpers the Alembic revisions use.

Statements run on the migration's own connection and transaction, through psycopg directly so
the SQL is sent as written (no SQLAlchemy bind-parameter parsing of ``::`` casts or ``%`` in
format strings).

Two kinds of SQL (see heaters_db/rerunnable.py): a revision holds run-once deltas inline and
never reads today's sql/ files. The revisions released in 0.1.0 (0001-0011) were written to read
files; ``run_sql_files`` and ``install_plpython_function`` give them the files *as released*,
frozen in alembic/released/0.1.0.json, so a fresh install replays exactly what a 0.1.0 database
ran. Today's functions, views, triggers and grants are applied afterwards by every migrate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from alembic import op

from heaters_db.resources import read_released

SEARCH_PATH = "public, pg_temp"


def _driver_connection() -> Any:
    """The psycopg connection under the revision's SQLAlchemy one (set for a running migration)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None, "only inside an alembic migration"
    return connection


def execute(sql: str) -> None:
    _driver_connection().execute(sql)


def fetch_one(sql: str, params: tuple = ()) -> tuple | None:
    return _driver_connection().execute(sql, params).fetchone()


def run_sql_files(*relative_paths: str) -> None:
    """Run sql/<path> of the 0.1.0 release, for each path in order (revisions 0001-0011 only)."""
    for relative in relative_paths:
        execute(read_released("0.1.0", f"sql/{relative}"))


def describe_setting(name: str, description: str) -> None:
    """Reword a heaters_db_settings row's description (its value stays as the operator set it)."""
    fetch_one(
        "UPDATE heaters_db_settings SET description = %s WHERE name = %s RETURNING name",
        (description, name),
    )


def table_exists(name: str) -> bool:
    row = fetch_one("SELECT to_regclass(%s) IS NOT NULL", (f"public.{name}",))
    return bool(row and row[0])


def meta_get(key: str, default: Any = None) -> Any:
    if not table_exists("heaters_db_meta"):
        return default
    row = fetch_one("SELECT value FROM heaters_db_meta WHERE key = %s", (key,))
    return row[0] if row else default


def meta_set(key: str, value: Any) -> None:
    _driver_connection().execute(
        "INSERT INTO heaters_db_meta (key, value) VALUES (%s, %s::jsonb) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (key, json.dumps(value)),
    )


def plpython_function_sql(
    name: str,
    arguments: str,
    returns: str,
    source_file: str,
    entry_point: str,
    call_arguments: str,
    volatility: str = "STABLE",
) -> str:
    """CREATE FUNCTION for a PL/Python body kept in plpython/<source_file>, as released in 0.1.0
    (revisions 0006 and 0010; today's bodies are installed by heaters_db.rerunnable)."""
    source = read_released("0.1.0", f"plpython/{source_file}")
    body = plpython_body(source_file, source, entry_point, call_arguments)
    return (
        f"CREATE OR REPLACE FUNCTION {name}({arguments}) RETURNS {returns}\n"
        f"LANGUAGE plpython3u {volatility} SECURITY DEFINER SET search_path = {SEARCH_PATH}\n"
        f"AS $plpython$\n{body}$plpython$;\n"
        f"REVOKE ALL ON FUNCTION {name}({_argument_types(arguments)}) FROM PUBLIC;\n"
    )


def plpython_body(
    source_file: str,
    source: str,
    entry_point: str,
    call_arguments: str,
    modules: Sequence[tuple[str, str]] = (),
) -> str:
    """The body of a PL/Python function that runs ``entry_point`` of a plpython/ module.

    The module is embedded as a string and executed once per session into a module cached in
    SD, so per-call cost is one dict lookup; ``entry_point(plpy, SD, ...)`` does the work.
    ``modules``: the (file, source) of the sibling plpython/ modules it imports, dependencies
    first (heaters_db.rerunnable.plpython_modules); they are embedded too and put in sys.modules
    under their file's name before the entry module runs, so its ``from <sibling> import ...``
    works in the server as it does under the venv. Without them the body is as 0.1.0 made it.
    """
    module_key = f"heaters_db:{source_file}"
    if not modules:
        return (
            f"# Generated from plpython/{source_file} by heaters_db.schema; edit that file, not this body.\n"
            f"SOURCE = {source!r}\n"
            f"module = SD.get({module_key!r})\n"
            "if module is None or module.__dict__.get('__heaters_source__') != SOURCE:\n"
            "    import types\n"
            f"    module = types.ModuleType({source_file.removesuffix('.py')!r})\n"
            "    exec(compile(SOURCE, "
            + repr(f"plpython/{source_file}")
            + ", 'exec'), module.__dict__)\n"
            "    module.__heaters_source__ = SOURCE\n"
            f"    SD[{module_key!r}] = module\n"
            f"return module.{entry_point}(plpy, SD, {call_arguments})\n"
        )
    siblings = [(name.removesuffix(".py"), text) for name, text in modules]
    names = ", ".join(f"plpython/{name}" for name, _ in modules)
    return (
        f"# Generated from plpython/{source_file} (with {names}) by heaters_db.schema; edit those "
        "files, not this body.\n"
        f"SOURCE = {source!r}\n"
        f"MODULES = {siblings!r}\n"
        f"module = SD.get({module_key!r})\n"
        "if module is None or module.__dict__.get('__heaters_source__') != (SOURCE, MODULES):\n"
        "    import sys\n"
        "    import types\n"
        "    for name, text in MODULES:\n"
        "        sibling = types.ModuleType(name)\n"
        "        exec(compile(text, 'plpython/' + name + '.py', 'exec'), sibling.__dict__)\n"
        "        sys.modules[name] = sibling\n"
        f"    module = types.ModuleType({source_file.removesuffix('.py')!r})\n"
        "    exec(compile(SOURCE, "
        + repr(f"plpython/{source_file}")
        + ", 'exec'), module.__dict__)\n"
        "    module.__heaters_source__ = (SOURCE, MODULES)\n"
        f"    SD[{module_key!r}] = module\n"
        f"return module.{entry_point}(plpy, SD, {call_arguments})\n"
    )


def _argument_types(arguments: str) -> str:
    """'head_id integer, embedding vector' -> 'integer, vector' (for REVOKE/GRANT/DROP)."""
    types = []
    for argument in arguments.split(","):
        words = argument.split(" DEFAULT ")[0].split()
        types.append(" ".join(words[1:]))
    return ", ".join(types)


def install_plpython_function(**kwargs: str) -> None:
    execute(plpython_function_sql(**kwargs))


def drop_functions(*signatures: str) -> None:
    for signature in signatures:
        execute(f"DROP FUNCTION IF EXISTS {signature}")
