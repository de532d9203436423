"""A PL/Python body may span several plpython/ files: the entry module's sibling imports are
embedded with it (heaters_db.rerunnable.plpython_modules, heaters_db.schema.plpython_body)."""

from __future__ import annotations

import sys
import textwrap

import pytest

from heaters_db.rerunnable import plpython_modules
from heaters_db.schema import plpython_body

FILES = {
    "plpython/entry.py": "import numpy as np\nfrom middle import twice\n\n"
    "def run(plpy, SD, x):\n    return twice(x) + int(np.int64(1))\n",
    "plpython/middle.py": "from leaf import one\n\ndef twice(x):\n    return 2 * x * one()\n",
    "plpython/leaf.py": "def one():\n    return 1\n",
    "plpython/loop_a.py": "from loop_b import b\na = 1\n",
    "plpython/loop_b.py": "from loop_a import a\nb = 2\n",
}


def read(relative: str) -> str:
    try:
        return FILES[relative]
    except KeyError:
        raise FileNotFoundError(relative) from None


def run_body(body: str, SD: dict, x: int) -> int:
    """Run a generated body as PL/Python does: the body of a function of (plpy, SD, x)."""
    scope: dict = {}
    exec("def function(plpy, SD, x):\n" + textwrap.indent(body, "    "), scope)
    return scope["function"](None, SD, x)


def test_siblings_come_dependencies_first_and_other_imports_are_left_alone() -> None:
    modules = plpython_modules("entry.py", FILES["plpython/entry.py"], read)
    assert [name for name, _ in modules] == ["leaf.py", "middle.py"]  # numpy: no such file
    assert plpython_modules("leaf.py", FILES["plpython/leaf.py"], read) == []
    # Modules executed one after the other cannot import each other.
    with pytest.raises(ValueError, match="loop_a.py -> loop_b.py -> loop_a.py"):
        plpython_modules("loop_a.py", FILES["plpython/loop_a.py"], read)


def test_a_body_without_siblings_is_as_released() -> None:
    body = plpython_body("leaf.py", FILES["plpython/leaf.py"], "one", "")
    assert "MODULES" not in body and "sys.modules" not in body


def test_the_generated_body_imports_its_siblings_and_reloads_when_one_changes() -> None:
    source = FILES["plpython/entry.py"]
    SD: dict = {}
    saved = {name: sys.modules.get(name) for name in ("leaf", "middle")}
    try:
        modules = plpython_modules("entry.py", source, read)
        body = plpython_body("entry.py", source, "run", "x", modules)
        assert run_body(body, SD, 5) == 11
        assert run_body(body, SD, 5) == 11  # cached in SD
        # A migrate that changed only a sibling: the cached module must not be reused.
        modules = [(name, text.replace("return 1", "return 10")) for name, text in modules]
        body = plpython_body("entry.py", source, "run", "x", modules)
        assert run_body(body, SD, 5) == 101
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@pytest.mark.parametrize("name", ["anchor_clustering.py", "anchor_scores.py"])
def test_next_anchors_body_spans_its_sibling_modules(name) -> None:
    from heaters_db.rerunnable import Layer

    sql = Layer.current().object_sql("functions/next_anchors_pick.sql")
    assert f"plpython/{name}" in sql
