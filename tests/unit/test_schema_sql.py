"""The SQL sources keep the project's rules, checked without a database: one function per file
under sql/functions, named like the file, each with a pinned search_path; and the PL/Python
wrapper embeds plpython/ files verbatim. (What is installed, ACLs included, is checked against
the catalog in tests/integration/test_security.py.)"""

from __future__ import annotations

import ast
import re

import pytest

from heaters_db import schema
from heaters_db.resources import plpython_path, project_root

FUNCTION_FILES = sorted((project_root() / "sql" / "functions").glob("*.sql"))
CREATE_FUNCTION = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(", re.IGNORECASE)


@pytest.mark.parametrize("path", FUNCTION_FILES, ids=lambda p: p.name)
def test_one_function_per_file_with_a_pinned_search_path(path) -> None:
    text = path.read_text()
    assert CREATE_FUNCTION.findall(text) == [path.stem]
    assert "SET search_path = public, pg_temp" in text


def test_plpython_wrapper_keeps_the_file_verbatim() -> None:
    sql = schema.plpython_function_sql(
        name="apply_head",
        arguments="head_id integer, embedding vector",
        returns="vector",
        source_file="apply_head.py",
        entry_point="plpython_body",
        call_arguments="head_id, embedding",
    )
    assert sql.startswith(
        "CREATE OR REPLACE FUNCTION apply_head(head_id integer, embedding vector)"
    )
    assert "LANGUAGE plpython3u STABLE SECURITY DEFINER SET search_path = public, pg_temp" in sql
    assert sql.rstrip().endswith("REVOKE ALL ON FUNCTION apply_head(integer, vector) FROM PUBLIC;")
    # The body embeds the file as a Python string literal: evaluating it gives the file back.
    literal = re.search(r"^SOURCE = (.*)$", sql, re.MULTILINE).group(1)
    assert ast.literal_eval(literal) == plpython_path("apply_head.py").read_text()
