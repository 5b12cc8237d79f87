"""Parameter checks shared by the measures and the statistics they call: one message per wrong value.

Each returns the value in its canonical type, or raises ``ValueError`` (``TypeError`` for a flag)
naming the parameter; a measure turns that into a ``MeasureError`` naming itself or the model.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def int_at_least(name: str, value, minimum: int) -> int:
    """``value`` as an int when it is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def finite_at_least(name: str, value, minimum: float) -> float:
    """``value`` as a float when it is a finite real number (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")
    return float(value)


def one_of(name: str, value, choices: tuple) -> object:
    """``value`` when it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be {' or '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def flag(name: str, value) -> bool:
    """``value`` as a bool when it is True or False (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)
