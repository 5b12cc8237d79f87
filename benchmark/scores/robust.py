"""Robust sign-error of a measure (Dziugaite, Drouin et al., "In search of robust measures of
generalization", NeurIPS 2020, arXiv 2010.11924, section 4 "coupled networks").

An environment (a *cell*) is a pair of hyperparameter configurations that differ in exactly one
hyperparameter h; its sign-error is the mean, over the pairs of models (one trained at each
configuration: every pair across the two when configurations have several replicates), of

    l = (1 - sgn(C_1 - C_2) * sgn(g_1 - g_2)) / 2,

C the measure oriented so that larger predicts a larger gap (``sign`` * value), g the generalization
gap. A pair ranked the right way costs 0, the wrong way 1, and a tie in the measure *or* in the gap
costs 1/2 (sgn(0) = 0: a coin flip, as in the paper).

Weighting within a cell: every pair weighs 1 by default. With ``test_size`` n (the number of test
examples each gap was measured on) pairs get the paper's Monte Carlo noise filter: the Hoeffding
weight psi = max(0, 1 - 2 exp(-2 n (|g_1 - g_2| / 2)^2))^2, the probability that the two gaps truly
differ, used as (psi - 1/2)_+; cells whose weights sum to zero, or whose effective sample size
(sum w)^2 / sum w^2 is below ``min_ess``, are left out.

Per hyperparameter h, the distribution over its cells is reported (mean, 90th percentile, max and
the number of cells); the **robust sign-error** is the worst case over hyperparameters of the mean
over cells, max_h mean_cells(h) l; ``worst_cell`` is the paper's sup over all single cells.
0 is perfect, 0.5 is a coin flip, 1 always wrong.
"""

from __future__ import annotations

import numpy as np

# ``arrays`` below is a ``scores.scoring.TaskArrays`` (scoring imports this module, not the reverse).


def hoeffding_weight(gap_difference: np.ndarray, test_size: int) -> np.ndarray:
    """(psi - 1/2)_+ with psi = max(0, 1 - 2 exp(-2 n (|dg| / 2)^2))^2 (the paper's noise filter)."""
    d = np.abs(np.asarray(gap_difference, dtype=np.float64))
    psi = np.maximum(0.0, 1.0 - 2.0 * np.exp(-2.0 * test_size * (d / 2.0) ** 2)) ** 2
    return np.maximum(psi - 0.5, 0.0)


def _environments(arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The model pairs (i, j) that differ in exactly one hyperparameter, each pair's cell (an unordered
    pair of configurations, 0 .. C-1) and each cell's hyperparameter index (C,)."""
    names = arrays.names
    n = len(arrays.keys)
    codes = np.stack([arrays.codes[h] for h in names], axis=1) if names else np.zeros((n, 0), np.int64)
    _, config = np.unique(codes, axis=0, return_inverse=True)
    config = config.ravel()
    i, j = np.triu_indices(n, k=1)
    differs = codes[i] != codes[j]  # (pairs, H)
    one = differs.sum(axis=1) == 1
    i, j, hp = i[one], j[one], differs[one].argmax(axis=1)
    lo, hi = np.minimum(config[i], config[j]), np.maximum(config[i], config[j])
    cells, cell = np.unique(lo * (config.max() + 1 if n else 1) + hi, return_inverse=True)
    cell = cell.ravel()
    cell_hp = np.zeros(len(cells), dtype=np.int64)
    cell_hp[cell] = hp
    return i, j, cell, cell_hp


def cell_sign_errors_batch(preds, gaps, arrays, sign: int = 1, test_size: int | None = None,
                           min_ess: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sign-error of every cell for R row pairs of predictions (R, N) or (N,) and gaps (R, N) or (N,)
    (numpy broadcasting of rows): ``(values (R, C), kept (R, C) bool, cell_hp (C,))``.

    Models with equal values of every hyperparameter are replicates of one configuration.
    """
    preds = sign * np.atleast_2d(np.asarray(preds, dtype=np.float64))
    gaps = np.atleast_2d(np.asarray(gaps, dtype=np.float64))
    i, j, cell, cell_hp = _environments(arrays)
    onehot = np.zeros((len(i), len(cell_hp)))
    onehot[np.arange(len(i)), cell] = 1.0
    dg = gaps[:, i] - gaps[:, j]
    loss = (1.0 - np.sign(preds[:, i] - preds[:, j]) * np.sign(dg)) / 2.0
    weight = np.ones((1, len(i))) if test_size is None else hoeffding_weight(dg, test_size)
    total = weight @ onehot
    squares = (weight**2) @ onehot
    errors = (weight * loss) @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        ess = np.where(total > 0, total**2 / np.where(squares > 0, squares, 1.0), 0.0)
        value = errors / np.where(total > 0, total, 1.0)
    kept = np.broadcast_to((total > 0) & (ess >= min_ess), value.shape)
    return value, kept, cell_hp


def robust_batch(preds, gaps, arrays, sign: int = 1, test_size: int | None = None,
                 min_ess: float = 0.0, cross: bool = False) -> np.ndarray:
    """The robust sign-error (R,), max over hyperparameters of the mean over their kept cells, of each
    row pair; NaN where no cell is kept. With ``cross``: (len(gaps), len(preds)), every prediction row
    against every gap row."""
    if cross:
        rows = np.atleast_2d(np.asarray(preds, dtype=np.float64))
        return np.stack([robust_batch(p, gaps, arrays, sign, test_size, min_ess) for p in rows], axis=1)
    value, kept, cell_hp = cell_sign_errors_batch(preds, gaps, arrays, sign, test_size, min_ess)
    per = []
    for k in range(len(arrays.names)):
        mask = kept & (cell_hp == k)[None, :]
        counts = mask.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per.append(np.where(counts > 0, np.where(mask, value, 0.0).sum(axis=1) / np.maximum(counts, 1), -np.inf))
    if not per:
        return np.full(len(value), np.nan)
    worst = np.max(np.stack(per), axis=0)
    return np.where(np.isinf(worst), np.nan, worst)


def cell_sign_errors(pred: np.ndarray, arrays, sign: int = 1, test_size: int | None = None,
                     min_ess: float = 0.0) -> dict[str, np.ndarray]:
    """Per hyperparameter, the sign-error of each of its cells (kept cells only), of one prediction vector."""
    value, kept, cell_hp = cell_sign_errors_batch(pred, arrays.gaps, arrays, sign, test_size, min_ess)
    return {h: value[0][kept[0] & (cell_hp == k)] for k, h in enumerate(arrays.names)}


def _summary(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"mean": None, "p90": None, "max": None, "cells": 0}
    return {"mean": float(values.mean()), "p90": float(np.percentile(values, 90)), "max": float(values.max()),
            "cells": int(len(values))}


def robust_sign_error(pred: np.ndarray, arrays: TaskArrays, sign: int = 1, test_size: int | None = None,
                      min_ess: float = 0.0) -> dict:
    """JSON-ready: ``{"robust": max_h mean, "worst_hyperparameter": h, "worst_cell": max over cells,
    "mean": mean over all cells, "per_hyperparameter": {h: {"mean", "p90", "max", "cells"}}, ...}``."""
    per = cell_sign_errors(pred, arrays, sign, test_size, min_ess)
    summaries = {h: _summary(v) for h, v in per.items()}
    means = {h: s["mean"] for h, s in summaries.items() if s["mean"] is not None}
    everything = np.concatenate(list(per.values())) if per else np.zeros(0)
    worst = max(means, key=lambda h: (means[h], h)) if means else None
    return {
        "robust": means[worst] if worst else None,
        "worst_hyperparameter": worst,
        "worst_cell": float(everything.max()) if len(everything) else None,
        "mean": float(everything.mean()) if len(everything) else None,
        "per_hyperparameter": summaries,
        "sign": sign,
        "noise_filter": None if test_size is None else {"test_size": test_size, "min_ess": min_ess},
    }


def robust_from_repeats(results: list[dict]) -> dict:
    """Combine per-repeat ``robust_sign_error`` dicts: every number is the mean over repeats (None where
    a repeat has none); ``worst_hyperparameter`` is the one with the highest mean."""
    def mean(values):
        return None if any(v is None for v in values) else float(np.mean(values))

    out = dict(results[0])
    per = {}
    for h, s in results[0]["per_hyperparameter"].items():
        per[h] = {k: mean([r["per_hyperparameter"][h][k] for r in results]) for k in ("mean", "p90", "max")}
        per[h]["cells"] = s["cells"]
    means = {h: s["mean"] for h, s in per.items() if s["mean"] is not None}
    out.update({key: mean([r[key] for r in results]) for key in ("robust", "worst_cell", "mean")})
    out["worst_hyperparameter"] = max(means, key=lambda h: (means[h], h)) if means else None
    out["per_hyperparameter"] = per
    return out
