"""The scores of one prediction vector on one task: the official API over the batched kernels.

``TaskArrays`` reduces a task to what scoring needs; ``prediction_vector`` validates predictions and
orders them by the task's models; ``conditional_mutual_information`` is the official PGDL score
(SCORING.md) and ``cmi_conditions`` its per-conditioning-set scores, both one row of
``cmi.cmi_batch``; ``evaluate`` gathers every score (CMI, Kendall's tau and the granulated Kendall psi
of ``kendall``, the robust sign-error of ``robust``) in one JSON-ready dict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from task_loaders import Task, canonical

from .cmi import cmi_batch, conditioning_sets  # noqa: F401  (conditioning_sets: part of this API)
from .kendall import cell_kendall_taus, granulated_kendall, kendall_tau  # noqa: F401  (re-exported)
from .robust import robust_sign_error


class PredictionError(ValueError):
    """Predictions that do not fit the task (missing models, non-finite values)."""


@dataclass
class TaskArrays:
    """A task reduced to what scoring needs: gaps, hyperparameter value codes, model keys."""

    keys: list[str]  # model_<id>, in task order
    gaps: np.ndarray  # float64 (N,)
    names: list[str]  # hyperparameter names
    codes: dict[str, np.ndarray]  # name -> value index per model (N,)
    sizes: dict[str, int]  # name -> number of possible values
    _cmi_grid: object = field(default=None, repr=False)  # cmi.task_grid keeps its CMIGrid here

    @classmethod
    def from_task(cls, task: Task) -> "TaskArrays":
        grid = task.grid
        codes = {}
        for name in grid.names:
            lookup = {canonical(v): i for i, v in enumerate(grid.values[name])}
            codes[name] = np.array([lookup[canonical(task.hparams(m)[name])] for m in task.model_ids], dtype=np.int64)
        return cls(
            keys=[f"model_{m}" for m in task.model_ids],
            gaps=task.gaps(),
            names=list(grid.names),
            codes=codes,
            sizes={n: len(grid.values[n]) for n in grid.names},
        )


def check_unique_models(predictions: dict, where: str = "predictions") -> dict:
    """Predictions keyed ``model_<id>``; a model given twice (``"4"`` and ``"model_4"``) is refused."""
    normalized, given = {}, {}
    for key, value in predictions.items():
        k = str(key)
        model = k if k.startswith("model_") else f"model_{k}"
        if model in normalized:
            raise PredictionError(f"{where}: {model} has two predictions (keys {given[model]!r} and {k!r})")
        normalized[model], given[model] = value, k
    return normalized


def prediction_vector(predictions: dict, arrays: TaskArrays, where: str = "predictions") -> np.ndarray:
    """Order predictions (keyed ``model_<id>`` or bare id) by the task's models, validating them."""
    normalized = check_unique_models(predictions, where)
    missing = [k for k in arrays.keys if k not in normalized]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise PredictionError(f"{where}: no prediction for {len(missing)} of {len(arrays.keys)} models: {shown}")
    extra = sorted(set(normalized) - set(arrays.keys))
    if extra:
        raise PredictionError(f"{where}: predictions for models not in the task: {', '.join(extra[:8])}")
    out = np.empty(len(arrays.keys), dtype=np.float64)
    for i, key in enumerate(arrays.keys):
        value = normalized[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise PredictionError(f"{where}: {key} has a non-numeric prediction {value!r}")
        try:
            number = float(value)
        except OverflowError:
            raise PredictionError(f"{where}: {key} has a prediction too large for a float") from None
        if not math.isfinite(number):
            raise PredictionError(f"{where}: {key} has a non-finite prediction {value!r}")
        out[i] = number
    return out


def cmi_conditions(pred: np.ndarray, arrays: TaskArrays) -> dict[tuple[str, ...], float]:
    """The score of every official conditioning set of one prediction vector (``cmi.cmi_batch``, one row)."""
    return {cond: float(v[0]) for cond, v in cmi_batch(pred, arrays.gaps, arrays).conditions.items()}


@dataclass
class CMIResult:
    cmi: float
    conditions: dict[tuple[str, ...], float] = field(default_factory=dict)


def conditional_mutual_information(predictions: dict, task: Task | TaskArrays, where: str = "predictions") -> CMIResult:
    """The official PGDL score of ``predictions`` ({"model_<id>": value}) on ``task``, as a fraction.

    ``result.cmi`` is the minimum over conditioning pairs, ``result.conditions`` the per-pair scores.
    A pair whose gap-sign entropy is zero everywhere (all gaps equal) has no defined score (NaN) and is
    left out of the minimum.
    """
    arrays = task if isinstance(task, TaskArrays) else TaskArrays.from_task(task)
    pred = prediction_vector(predictions, arrays, where)
    conditions = cmi_conditions(pred, arrays)
    finite = [v for v in conditions.values() if not math.isnan(v)]
    return CMIResult(min(finite) if finite else float("nan"), conditions)


def evaluate(predictions: dict, task: Task | TaskArrays, where: str = "predictions", sign: int = 1) -> dict:
    """Every score of one set of predictions on one task, as a JSON-ready dict (fractions, not x100).

    ``sign`` orients the predictions for the robust sign-error (+1: larger predicts a larger gap, the
    ``.predict`` convention; -1 for a measure registered with sign -1); CMI and tau ignore it.
    """
    arrays = task if isinstance(task, TaskArrays) else TaskArrays.from_task(task)
    pred = prediction_vector(predictions, arrays, where)
    result = conditional_mutual_information(dict(zip(arrays.keys, pred)), arrays, where)
    return {
        "cmi": result.cmi,
        "conditions": {"|".join(c): v for c, v in result.conditions.items()},
        "kendall_tau": kendall_tau(pred, arrays.gaps),
        "granulated_kendall": granulated_kendall(pred, arrays),
        "robust_sign_error": robust_sign_error(pred, arrays, sign),
        "sign": sign,  # the orientation the table shows tau and psi in; "kendall_tau" and "psi" stay raw
        "num_models": len(pred),
    }
