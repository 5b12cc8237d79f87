"""Complexity measures and their registry.

A measure is a function ``fn(view: ModelView, **params) -> float`` registered with ``@measure``.
It sees one trained model and its training data through ``ModelView`` and never opens files.
"""

from .model_view import ModelView
from .registry import Measure, MeasureError, add, available, get, measure

# Built-in measures register themselves on import.
from . import norms  # noqa: E402,F401
from . import fragmentation  # noqa: E402,F401
from . import sparsity  # noqa: E402,F401
from . import clustering  # noqa: E402,F401
from . import margins  # noqa: E402,F401
from . import classic  # noqa: E402,F401
from . import winners  # noqa: E402,F401
from . import augmentation  # noqa: E402,F401
from . import flatness  # noqa: E402,F401

__all__ = ["Measure", "MeasureError", "ModelView", "add", "available", "get", "measure"]
