"""Importing a ``.py`` file given by its path, as a module with a unique name (plugins, submissions)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from measures import MeasureError


def import_file(path: str | Path, prefix: str = "pgdl_bench_plugin_"):
    """Import a ``.py`` file as a uniquely named module (once per process), its folder on ``sys.path`` so that
    it can import the modules beside it; returns the module."""
    path = Path(path).resolve()
    if not path.is_file():
        raise MeasureError(f"{path}: plugin file not found")
    name = prefix + hashlib.sha1(str(path).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    # like a script run by Python, the file sees the modules beside it (a plugin's own helpers)
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise MeasureError(f"{path}: cannot import this file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
