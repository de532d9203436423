"""The SQL sources keep the project's rules, checked without a database: one function per file
under sql/functions, named like the file, each with a pinned search_path; and the PL/Python
wrapper embeds plpython/ files verbatim. (What is installed, ACLs included, is checked against
the catalog in tests/integration/test_security.py.)"""

from __future__ import annotations

import ast
import re

import pytest

from heaters_db.rerunnable import Layer
from heaters_db.resources import plpython_path, project_root

FUNCTION_FILES = sorted((project_root() / "sql" / "functions").glob("*.sql"))
CREATE_FUNCTION = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(", re.IGNORECASE)


@pytest.mark.parametrize("path", FUNCTION_FILES, ids=lambda p: p.name)
def test_one_function_per_file_with_a_pinned_search_path(path) -> None:
    text = path.read_text()
    assert CREATE_FUNCTION.findall(text) == [path.stem]
    assert "SET search_path = public, pg_temp" in text


def test_plpython_wrapper_keeps_the_file_verbatim() -> None:
    sql = Layer.current().object_sql("functions/apply_head.sql")
    assert "CREATE OR REPLACE FUNCTION apply_head(head_id integer, embedding vector)" in sql
    assert "LANGUAGE plpython3u STABLE SECURITY DEFINER SET search_path = public, pg_temp" in sql
    assert not re.search(r"^#@ plpython/", sql, re.MULTILINE)
    # The body embeds the file as a Python string literal: evaluating it gives the file back.
    literal = re.search(r"^SOURCE = (.*)$", sql, re.MULTILINE).group(1)
    assert ast.literal_eval(literal) == plpython_path("apply_head.py").read_text()


def test_every_rerunnable_file_is_listed_once_in_order() -> None:
    """A file under functions/, views/, triggers/ or grants/ that rerunnable.txt does not list
    would never be installed; one listed twice or missing on disk is a mistake too."""
    sql_dir = project_root() / "sql"
    listed = Layer.current().files()
    on_disk = sorted(
        str(path.relative_to(sql_dir))
        for folder in ("functions", "views", "triggers", "grants")
        for path in (sql_dir / folder).glob("*.sql")
    )
    assert len(listed) == len(set(listed))
    assert sorted(listed) == on_disk


@pytest.mark.parametrize(
    "path", sorted((project_root() / "sql" / "triggers").glob("*.sql")), ids=lambda p: p.name
)
def test_triggers_are_rerunnable(path) -> None:
    text = path.read_text()
    assert "CREATE TRIGGER" not in text.replace("CREATE OR REPLACE TRIGGER", "")
