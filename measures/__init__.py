"""Complexity measures and their registry.

A measure is a function ``fn(view: ModelView, **params) -> float`` registered with ``@measure("name")``.
It sees one trained model and its training data through ``ModelView`` (``measures.model_view``: the
whole contract) and never opens files.

Layout: the contract at the top (``model_view``, ``registry``, ``catalogue``, ``plugins`` for entry
points, ``checks`` for parameters, ``citations``, ``code_identity``); ``stats/``, pure statistics of arrays and
tensors that import none of the contract; ``families/``, the built-in measures as thin ``@measure``
adapters, one module per family of ``-m family:NAME`` (``winners`` a subpackage).
"""

from .registry import Measure, MeasureError, add, measure
from .model_view import ModelView
from .catalogue import FAMILIES, available, family, get, select

# Built-in measures register themselves on import.
from . import families  # noqa: E402,F401

__all__ = ["FAMILIES", "Measure", "MeasureError", "ModelView", "add", "available", "family", "get", "measure",
           "select"]
