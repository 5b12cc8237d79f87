"""What identifies the code of a measure, so that results made by other code are never reused.

The results store keys each value by ``f"{version}+{code_hash(measure)}"``: editing a plugin file,
a built-in measure's module, a module of ``measures.stats`` or ``measures.families`` that it uses
(directly or through another such module), or an installed package's measure (or upgrading that
package) changes the hash, and the next run recomputes instead of replaying values the current code
would not give.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import types
from pathlib import Path

from .plugins import distribution_of
from .registry import Measure

_CACHE: dict[str, tuple[object, str, str]] = {}  # name -> (function, distribution, hash)
# Modules whose code a measure's value depends on, besides its own: the statistics and the adapters' helpers.
_DEPENDENCIES = ("measures.stats.", "measures.families.")


def module_files(module_name: str) -> list[str]:
    """The file of module ``module_name`` and of every ``measures.stats`` or ``measures.families`` module it
    uses (a module, or a function or class imported from one), transitively: its own first, then sorted."""
    found: dict[str, str | None] = {}
    todo = [module_name]
    while todo:
        name = todo.pop()
        module = sys.modules.get(name)
        if name in found or module is None:
            continue
        found[name] = getattr(module, "__file__", None)
        for value in vars(module).values():
            used = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(used, str) and used.startswith(_DEPENDENCIES) and used not in found:
                todo.append(used)
    own = found.pop(module_name, None)
    return ([own] if own else []) + sorted(f for f in found.values() if f)


def code_hash(entry: Measure) -> str:
    """A short hash of the measure function's source, its module's file (and the files of the statistics
    and helper modules it uses, ``module_files``) and, for a measure from an installed package (entry
    point), that distribution's name and version."""
    distribution = distribution_of(entry.name)
    cached = _CACHE.get(entry.name)
    if cached is None or cached[0] is not entry.fn or cached[1] != distribution:
        h = hashlib.sha256()
        fn = inspect.unwrap(entry.fn)
        try:
            h.update(inspect.getsource(fn).encode())
        except (OSError, TypeError):  # defined at the prompt or in C: hash its byte code instead
            code = getattr(fn, "__code__", None)
            h.update(code.co_code + repr(code.co_consts).encode() if code is not None else repr(fn).encode())
        for module_file in module_files(getattr(fn, "__module__", "") or ""):
            try:
                h.update(b"\0" + Path(module_file).read_bytes())
            except OSError:
                pass
        h.update(b"\0" + distribution.encode())
        cached = _CACHE[entry.name] = (entry.fn, distribution, h.hexdigest()[:12])
    return cached[2]


def code_version(entry: Measure) -> str:
    """The store's ``version`` of a measure: its declared version plus its code hash."""
    return f"{entry.version}+{code_hash(entry)}"
