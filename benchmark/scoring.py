"""Scores of a complexity measure against true generalization gaps.

``conditional_mutual_information`` is the official PGDL score (SCORING.md), vectorized: for every
ordered pair of distinct hyperparameters (h1, h2), all N^2 ordered model pairs (self pairs included)
are binned by (gap sign, measure sign) into one 2x2 table per combination of the two models' values of
h1 and h2: one ``np.bincount``. The pair's score is mean-over-tables mutual information divided by
mean-over-tables entropy of the gap sign; the task's score is the minimum over pairs.

Also here: Kendall's tau and the granulated Kendall coefficient of Jiang et al. (ICLR 2020).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from task_loaders import Task, canonical

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
    _pair_codes: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def pair_codes(self) -> dict[str, np.ndarray]:
        """Per hyperparameter, the code value_i * n + value_j of every ordered model pair (N^2,)."""
        if self._pair_codes is None:
            self._pair_codes = {
                n: (c[:, None] * self.sizes[n] + c[None, :]).ravel() for n, c in self.codes.items()
            }
        return self._pair_codes

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


def _sign_cells(pred: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Cell of every ordered pair (i, j): 2 * [gap_i > gap_j] + [pred_i > pred_j] (strict; ties are '-')."""
    g = gaps[:, None] > gaps[None, :]
    m = pred[:, None] > pred[None, :]
    return (2 * g.ravel().astype(np.int64)) + m.ravel()


def _slice_scores(tables: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For consecutive groups of 2x2 tables (rows of ``tables`` (K, 4), groups beginning at ``starts``):
    mean_k MI(gap sign; measure sign) / mean_k H(gap sign), one value per group."""
    totals = tables.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        # an empty table (no model pair with that combination: only in a resampled zoo) adds nothing
        p = np.divide(tables, totals, out=np.zeros_like(tables), where=totals > 0)
        p_gap = np.stack([p[:, 0] + p[:, 1], p[:, 2] + p[:, 3]], axis=1)  # (K, 2)
        p_meas = np.stack([p[:, 0] + p[:, 2], p[:, 1] + p[:, 3]], axis=1)  # (K, 2)
        expected = p_gap[:, [0, 0, 1, 1]] * p_meas[:, [0, 1, 0, 1]]
        positive = p > 0
        terms = np.where(positive, p * np.log2(np.where(positive, p, 1.0) / np.where(positive, expected, 1.0)), 0.0)
        mi = terms.sum(axis=1)
        entropy = -(p_gap * np.log2(p_gap + 1e-12)).sum(axis=1)
        counts = np.diff(np.append(starts, len(tables)))
        return (np.add.reduceat(mi, starts) / counts) / (np.add.reduceat(entropy, starts) / counts)


def conditioning_sets(names: list[str]) -> list[tuple[str, ...]]:
    """Ordered pairs of distinct hyperparameters; with fewer than two, all there are (an extension)."""
    if len(names) >= 2:
        return list(itertools.permutations(names, 2))
    return [tuple(names)]


def cmi_conditions(pred: np.ndarray, arrays: TaskArrays) -> dict[tuple[str, ...], float]:
    """The score of every conditioning set, vectorized (see module docstring).

    The tables of (h1, h2) and (h2, h1) hold the same counts in another slice order, so one
    ``bincount`` serves both orders; each order's slices are then averaged in the official order.
    """
    cells = _sign_cells(pred, arrays.gaps)
    pair_codes = arrays.pair_codes()
    tables, starts, conds = [], [], []
    offset = 0
    names = arrays.names
    if len(names) < 2:  # condition on what there is: one hyperparameter, or none
        index = pair_codes[names[0]] if names else 0
        size = arrays.sizes[names[0]] ** 2 if names else 1
        table = np.bincount(index * 4 + cells, minlength=size * 4).reshape(-1, 4)
        return {tuple(names): float(_slice_scores(table.astype(np.float64), np.array([0]))[0])}
    for h1, h2 in itertools.combinations(names, 2):
        s1, s2 = arrays.sizes[h1] ** 2, arrays.sizes[h2] ** 2
        counts = np.bincount((pair_codes[h1] * s2 + pair_codes[h2]) * 4 + cells, minlength=s1 * s2 * 4)
        counts = counts.reshape(s1, s2, 4)
        for cond, table in (((h1, h2), counts), ((h2, h1), counts.transpose(1, 0, 2))):
            tables.append(table.reshape(-1, 4))
            starts.append(offset)
            conds.append(cond)
            offset += s1 * s2
    scores = _slice_scores(np.concatenate(tables).astype(np.float64), np.array(starts))
    by_cond = dict(zip(conds, scores.tolist()))
    return {cond: by_cond[cond] for cond in conditioning_sets(names)}


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


def kendall_tau(pred: np.ndarray, gaps: np.ndarray) -> float:
    """Kendall's tau-b between a measure and the generalization gaps (scipy)."""
    from scipy.stats import kendalltau  # imported here: scipy.stats adds a second to every CLI start

    if len(pred) < 2:
        return float("nan")
    return float(kendalltau(pred, gaps).statistic)


def cell_kendall_taus(pred: np.ndarray, gaps: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between ``pred`` and ``gaps`` within each group of models (``cells``: a group id
    per model, 0 .. G-1), all groups at once: (concordant - discordant) / sqrt((n0 - n1)(n0 - n2)) over
    the pairs inside a group, n1 and n2 its pairs tied in pred and in gap (scipy's tau-b; NaN where
    a group has fewer than two models or all its values or all its gaps are equal)."""
    i, j = np.triu_indices(len(pred), k=1)
    same = cells[i] == cells[j]
    i, j = i[same], j[same]
    group = cells[i]
    size = int(cells.max()) + 1 if len(cells) else 0
    dp, dg = np.sign(pred[i] - pred[j]), np.sign(gaps[i] - gaps[j])
    n0 = np.bincount(group, minlength=size).astype(np.float64)
    n1 = np.bincount(group, dp == 0, minlength=size)
    n2 = np.bincount(group, dg == 0, minlength=size)
    score = np.bincount(group, dp * dg, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        denominator = np.sqrt((n0 - n1) * (n0 - n2))
        return np.where(denominator > 0, score / np.where(denominator > 0, denominator, 1.0), np.nan)


def granulated_kendall(pred: np.ndarray, arrays: TaskArrays) -> dict[str, float]:
    """Granulated Kendall coefficient (Jiang et al., ICLR 2020, eq. 4).

    For each hyperparameter h: the mean, over the cells of all other hyperparameters, of Kendall's
    tau-b between measure and gap among the models that differ only in h. Cells where tau is
    undefined (all gaps or all values equal) are skipped. ``psi`` is the mean over hyperparameters.
    """
    out: dict[str, float] = {}
    pred = np.asarray(pred, dtype=np.float64)
    for name in arrays.names:
        others = [n for n in arrays.names if n != name]
        key = np.zeros(len(pred), dtype=np.int64)
        for n in others:
            key = key * arrays.sizes[n] + arrays.codes[n]
        taus = cell_kendall_taus(pred, arrays.gaps, np.unique(key, return_inverse=True)[1].ravel())
        taus = taus[~np.isnan(taus)]
        out[name] = float(np.mean(taus)) if len(taus) else float("nan")
    values = [v for v in out.values() if not math.isnan(v)]
    out["psi"] = float(np.mean(values)) if values else float("nan")
    return out


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
        "num_models": len(pred),
        "sign": sign,  # the orientation the table shows tau and psi in; "kendall_tau" and "psi" stay raw
    }
