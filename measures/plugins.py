"""Third-party measures: installed packages (entry points) and objects named on the command line.

A package publishes measures by declaring, in its ``pyproject.toml``::

    [project.entry-points."pgdl_bench.measures"]
    my_measure = "my_package.module:my_measure"

The value may name a function decorated with ``@measures.measure`` (loading it registers it), a
plain function ``fn(view, **params) -> float`` (registered under the entry point's name, sign +1
unless it has a ``sign`` attribute), a ``Measure``, or a module whose import registers measures.
Entry points are loaded once, the first time the catalogue is read (``available()``, ``get()``).
A measure name registered by two sources is an error naming both. ``PGDL_BENCH_NO_PLUGINS=1``
turns entry-point discovery off (for debugging a broken plugin).
"""

from __future__ import annotations

import inspect
import os
import types
from importlib import metadata
from typing import Any

from .registry import _REGISTRY, Measure, MeasureError, _defaults, add

GROUP = "pgdl_bench.measures"

_state = {"loaded": False}
_DISTRIBUTIONS: dict[str, str] = {}  # measure name -> "distribution version" of its entry point


def distribution_of(name: str) -> str:
    """"<distribution> <version>" of the installed package whose entry point provided measure ``name``, or ""."""
    return _DISTRIBUTIONS.get(name, "")


def _distribution(entry_point) -> str:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "an unknown package"
    return f"package {dist.name} {dist.version}"


def register_object(obj: Any, name: str | None = None, source: str = "") -> list[str]:
    """Register what a plugin points at; returns the measure names it provides.

    ``obj``: a ``Measure``; a function already registered with ``@measure`` (nothing to do); a
    plain function ``fn(view, **params) -> float`` (registered as ``name`` or its ``__name__``);
    or a module (its import already registered its measures: the names registered from it).
    """
    if isinstance(obj, Measure):
        add(obj)
        return [obj.name]
    if isinstance(obj, types.ModuleType):
        return [m.name for m in _REGISTRY.values() if m.fn.__module__ == obj.__name__]
    if callable(obj):
        registered = [m.name for m in _REGISTRY.values() if m.fn is obj]
        if registered:
            return registered
        params = list(inspect.signature(obj).parameters)
        if not params:
            raise MeasureError(f"{source or obj!r}: a measure takes the model view as its first argument")
        doc = inspect.getdoc(obj) or ""
        measure_name = name or obj.__name__
        sign = getattr(obj, "sign", 1)
        if sign not in (1, -1):
            raise MeasureError(f"measure '{measure_name}' from {source}: sign must be +1 or -1, got {sign!r}")
        add(Measure(
            name=measure_name,
            fn=obj,
            description=doc.splitlines()[0] if doc else measure_name,
            source=getattr(obj, "source", "") or source,
            sign=sign,
            version=str(getattr(obj, "version", "1")),
            params=_defaults(obj),
            origin=f"{obj.__module__}:{obj.__qualname__}",
            stochastic=bool(getattr(obj, "stochastic", True)),
        ))
        return [measure_name]
    raise MeasureError(f"{source}: {obj!r} is not a measure, a function or a module")


def load_entry_points(force: bool = False) -> list[str]:
    """Load every installed ``pgdl_bench.measures`` entry point once; returns the names they provide."""
    if (_state["loaded"] and not force) or os.environ.get("PGDL_BENCH_NO_PLUGINS"):
        return []
    _state["loaded"] = True  # set first: a plugin that reads the registry while loading does not recurse
    names: list[str] = []
    for entry_point in sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name):
        where = f"entry point '{entry_point.name} = {entry_point.value}' of {_distribution(entry_point)}"
        try:
            obj = entry_point.load()
            provided = register_object(obj, name=entry_point.name, source=_distribution(entry_point))
        except MeasureError as exc:
            raise MeasureError(f"{where}: {exc}") from None
        except Exception as exc:
            raise MeasureError(f"{where} failed to load: {type(exc).__name__}: {exc}") from None
        dist = getattr(entry_point, "dist", None)
        for name in provided:
            _DISTRIBUTIONS[name] = f"{dist.name} {dist.version}" if dist is not None else ""
        names += provided
    return names
