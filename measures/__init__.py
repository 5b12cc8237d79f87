"""Complexity measures and their registry.

A measure is a function ``fn(view: ModelView, **params) -> float`` registered with ``@measure("name")``.
It sees one trained model and its training data through ``ModelView`` (``measures.model_view``: the
whole contract) and never opens files.
"""

from .registry import Measure, MeasureError, add, measure
from .model_view import ModelView
from .catalogue import FAMILIES, available, family, get, select

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

__all__ = ["FAMILIES", "Measure", "MeasureError", "ModelView", "add", "available", "family", "get", "measure",
           "select"]
