"""Plugin specs given on the command line (``--plugin``, ``--submission``), loaded in every process.

A spec is one of:

* ``path/to/file.py``: the file is imported (its ``@measure`` functions register themselves);
* ``path/to/file.py:function`` or ``package.module:function``: the module is imported and the
  function registered (under its ``@measure`` name, or its own name when it is a plain
  ``fn(view, **params) -> float``);
* ``package.module``: the module is imported;
* ``submission:DIR``: a PGDL competition submission folder (``complexity.py``), run under
  TensorFlow (``benchmark.running.submission``).

Workers receive the same specs and load them before computing, so plugin measures run in worker
processes and on Dask workers alike. Each spec is loaded once per process.
"""

from __future__ import annotations

import importlib

from measures import MeasureError
from measures.plugins import register_object

from .module_files import import_file
from .streams import stdout_to_stderr
from .submission import register_submission

_LOADED: dict[str, list[str]] = {}


def _split(spec: str) -> tuple[str, str | None]:
    """(module or file, attribute or None) of ``a.b:fn`` / ``f.py:fn`` / ``a.b`` / ``f.py``."""
    if spec.endswith(".py"):
        return spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isidentifier() and head:
        return head, tail
    return spec, None


def load_plugin(spec: str) -> list[str]:
    """Load one plugin spec (see the module docstring); returns the measure names it provides."""
    if spec in _LOADED:
        return _LOADED[spec]
    if spec.startswith("submission:"):
        names = [register_submission(spec[len("submission:"):])]
        _LOADED[spec] = names
        return names
    target, attribute = _split(spec)
    try:
        with stdout_to_stderr():  # a plugin that prints as it loads must not corrupt --json output
            module = import_file(target) if target.endswith(".py") else importlib.import_module(target)
    except MeasureError:
        raise
    except Exception as exc:
        raise MeasureError(f"plugin {spec}: cannot import {target} ({type(exc).__name__}: {exc})") from None
    if attribute is None:
        names = register_object(module, source=spec)
    else:
        if not hasattr(module, attribute):
            raise MeasureError(f"plugin {spec}: {target} has no attribute '{attribute}'")
        names = register_object(getattr(module, attribute), source=spec)
    _LOADED[spec] = names
    return names
