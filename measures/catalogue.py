"""Looking measures up: every registered measure, installed plugins included, by name or by family.

``available()`` and ``get()`` load the installed entry points first (``plugins.load_entry_points``),
so a third-party measure is found like a built-in one. ``select(["all"])``, ``select(["family:norms"])``
and plain names are what ``-m`` accepts on the command line; an unknown name suggests the closest ones.
"""

from __future__ import annotations

import difflib

from .plugins import load_entry_points
from .registry import _REGISTRY, Measure, MeasureError

# A built-in measure's family is the module (or subpackage) of ``measures.families`` defining it.
_FAMILIES_PACKAGE = "measures.families."
FAMILIES = ("margins", "fragmentation", "sparsity", "clustering", "norms", "flatness", "winners", "reference",
            "kv_margins")


def available() -> list[str]:
    """Names of every registered measure (installed plugins included), sorted."""
    load_entry_points()
    return sorted(_REGISTRY)


def get(name: str) -> Measure:
    """The measure called ``name``; MeasureError naming the closest registered names otherwise."""
    if name not in _REGISTRY:
        load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, available(), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            "`pgdl-bench measures` lists them; -m all or -m family:NAME selects several"
        raise MeasureError(f"unknown measure '{name}' ({hint})") from None


def family(entry: Measure) -> str:
    """A built-in measure's family (one of ``FAMILIES``); "plugins" for a measure from elsewhere."""
    module = entry.fn.__module__
    if not module.startswith(_FAMILIES_PACKAGE):
        return "plugins"
    return module[len(_FAMILIES_PACKAGE):].split(".")[0]


def select(specs: list[str]) -> list[str]:
    """Measure names for ``-m`` arguments: a name, ``all``, or ``family:NAME``; in order, without repeats."""
    names: list[str] = []
    for spec in specs:
        if spec == "all":
            names += available()
        elif spec.startswith("family:"):
            wanted = spec[len("family:"):]
            members = [n for n in available() if family(_REGISTRY[n]) == wanted]
            if not members:
                known = sorted({family(_REGISTRY[n]) for n in available()})
                raise MeasureError(f"no measure family '{wanted}' (families: {', '.join(known)})")
            names += members
        else:
            names.append(get(spec).name)
    return list(dict.fromkeys(names))
