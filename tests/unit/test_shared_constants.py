"""Constants with one home that the PL/Python bodies must copy.

The bodies in plpython/ run inside the server under its system Python with numpy only, so they
cannot import heaters_db; each keeps its own copy of what heaters_db defines once, and this test
holds the copies equal to it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from heaters_db.heads.module import NORM_EPSILON

PLPYTHON = Path(__file__).resolve().parents[2] / "plpython"


def plpython_module(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_constants_under_test", PLPYTHON / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("body", ["apply_head.py", "anchor_clustering.py"])
def test_plpython_bodies_normalise_with_the_heads_epsilon(body: str) -> None:
    assert plpython_module(body).NORM_EPSILON == NORM_EPSILON
