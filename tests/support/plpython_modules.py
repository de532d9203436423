"""The PL/Python modules (plpython/) imported as the server runs them: siblings importable by
their file names, so `from anchor_clustering import ...` inside them works."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from heaters_db.resources import plpython_path


def load_plpython_modules(*names: str) -> list[ModuleType]:
    folder = str(plpython_path(""))
    sys.path.insert(0, folder)
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(folder)
