"""The measure registry: ``@measure`` and ``add`` fill it (``catalogue`` reads it, plugins included)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable


class MeasureError(ValueError):
    """A measure that cannot be registered, found or computed; the message names it."""


@dataclass(frozen=True)
class Measure:
    """A registered complexity measure.

    ``fn(view, **params)`` returns one float. ``sign`` says which way it points: +1 when a larger
    value predicts a larger generalization gap, -1 when a smaller one does. ``stochastic`` says
    whether its value depends on random draws (``view.rng`` or the shared sample ``view.sample``):
    ``--repeats K`` reruns a stochastic measure with K seeds and a deterministic one once.
    """

    name: str
    fn: Callable[..., float]
    description: str
    source: str
    sign: int = 1
    version: str = "1"
    params: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    stochastic: bool = True

    def resolve(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Its parameters: the defaults updated by ``overrides``, each checked: a known name, and a value of
        its default's kind (a number for a number, a bool for a bool, a string or an int for a string, as a
        layer is a name or an index; None always)."""
        params = dict(self.params)
        for key, value in (overrides or {}).items():
            if key not in self.params:
                known = ", ".join(self.params) or "none"
                raise MeasureError(f"measure '{self.name}' has no parameter {key!r} (parameters: {known})")
            default = self.params[key]
            kinds = {bool: (bool,), int: (int, float), float: (int, float), str: (str, int)}.get(type(default))
            if kinds and value is not None and (not isinstance(value, kinds)
                                                or isinstance(value, bool) != (kinds == (bool,))):
                raise MeasureError(f"measure '{self.name}' expects {key} like its default {default!r}, got {value!r}")
            params[key] = value
        return params

    def __call__(self, view, **params) -> float:
        params = self.resolve(params)
        with view.running(self.name):  # view.rng() draws this measure's stream
            return self.fn(view, **params)


_REGISTRY: dict[str, Measure] = {}


def _defaults(fn: Callable) -> dict[str, Any]:
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())[1:]  # the first is the model view
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def measure(name: str, *, source: str = "", description: str | None = None, sign: int = 1, version: str = "1",
            stochastic: bool = True):
    """Register ``fn(view, **params) -> float`` as a complexity measure called ``name``.

    ``description`` defaults to the first line of the docstring; ``source`` cites where the
    definition comes from (shown as "no source" until given); ``sign`` is +1 when a larger value
    predicts a larger generalization gap, -1 otherwise; the keyword parameters of ``fn`` (with their
    defaults) are its parameters. See ``measures.model_view`` for what ``view`` offers.
    ``stochastic=False`` declares that the value is a function of the weights and the full training
    split alone (no ``view.rng``, no ``view.sample``): it is then computed once whatever ``--repeats``
    asks. The default, True, is the safe one: an undeclared measure is rerun with every seed.
    """
    if sign not in (1, -1):
        raise MeasureError(f"measure '{name}': sign must be +1 or -1")
    if not isinstance(stochastic, bool):
        raise MeasureError(f"measure '{name}': stochastic must be True or False, got {stochastic!r}")

    def register(fn: Callable[..., float]) -> Callable[..., float]:
        doc = inspect.getdoc(fn) or ""
        entry = Measure(
            name=name,
            fn=fn,
            description=description or (doc.splitlines()[0] if doc else name),
            source=source,
            sign=sign,
            version=str(version),
            params=_defaults(fn),
            origin=f"{fn.__module__}:{fn.__qualname__}",
            stochastic=stochastic,
        )
        add(entry)
        return fn

    return register


def add(entry: Measure) -> None:
    """Register a ``Measure``; a second measure under a taken name is an error naming both."""
    existing = _REGISTRY.get(entry.name)
    if existing is not None and existing.origin != entry.origin:
        raise MeasureError(
            f"measure name '{entry.name}' is registered twice: by {existing.origin} and by {entry.origin}"
        )
    _REGISTRY[entry.name] = entry
