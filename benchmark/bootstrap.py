"""Uncertainty of scores: intervals over repeats, the CMI on many bootstrap resamples at once, and
the paired test that says which measures are tied with the best.

* ``t_interval``: mean and Student-t 95% interval over a measure's repeats (its own randomness:
  ``--repeats K``): mean +- t_{0.975, K-1} s / sqrt(K). A deterministic measure's interval is its value.
* ``bootstrap_cmi``: the official CMI of ``R`` prediction vectors on ``B`` resamples of the models
  (multiplicity weights, B x N), vectorized. The official CMI counts all N^2 ordered model pairs, so a
  resample with model i drawn w_i times counts the pair (i, j) w_i w_j times: each 2x2 table is a
  quadratic form ``w^T A w`` in the weights, with A the indicator matrix of the table's cell. That is
  exactly the official score of the resampled zoo (duplicates included), computed with one matrix
  product per conditioning set instead of one scorer call per resample.
* ``paired_test``: each measure against the best one (the highest mean CMI), by a paired bootstrap
  over models and repeats: every resample draws the models of each task with replacement and the
  repeat indices with replacement, the same draws for both measures; the statistic is the difference
  of mean CMI over tasks. Two-sided p = 2 min(P(d <= 0), P(d >= 0)); a measure with p >= 0.05 is
  tied with the best.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from .scoring import TaskArrays, conditioning_sets

LEVEL = 0.95
ALPHA = 0.05
RESAMPLES = 1000
INTERVAL_METHOD = "Student t over repeats (mean +- t_{0.975,K-1} s/sqrt(K)); a deterministic measure's is its value"
TEST_METHOD = ("paired bootstrap over models and repeats (1000 resamples, the same draws for both measures): "
               "two-sided p of the difference in mean CMI from the best measure; p >= 0.05 is a tie")


# -- intervals over repeats -----------------------------------------------------------------------


def t_interval(values, exact: bool = False, level: float = LEVEL) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of ``values`` (one per repeat), the interval Student-t at ``level``.

    ``exact``: the values come from a deterministic measure, so the interval is the value itself.
    A stochastic measure with a single repeat has no interval (None, None). NaN values give NaN.
    """
    from scipy.stats import t

    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean()) if len(v) else float("nan")
    if exact or (len(v) > 1 and np.all(v == v[0])):
        return mean, mean, mean
    if len(v) < 2:
        return mean, None, None
    half = float(t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, mean - half, mean + half


# -- the CMI on bootstrap resamples ---------------------------------------------------------------


def _condition_tables(arrays: TaskArrays) -> tuple[np.ndarray, np.ndarray]:
    """For every unordered conditioning set (the two orders of a pair share their tables and score):
    the table of every ordered model pair (i, j), numbered across sets, as (C, N * N); and the index
    of each set's first table (C,). Pair (i, j) of set c is in table start_c + g_i * G + g_j, g the
    combination of the set's hyperparameter values."""
    seen, tables, starts = set(), [], []
    offset = 0
    for cond in conditioning_sets(arrays.names):
        if frozenset(cond) in seen:
            continue
        seen.add(frozenset(cond))
        code = np.zeros(len(arrays.keys), dtype=np.int64)
        size = 1
        for name in cond:
            code = code * arrays.sizes[name] + arrays.codes[name]
            size *= arrays.sizes[name]
        tables.append(offset + (code[:, None] * size + code[None, :]).ravel())
        starts.append(offset)
        offset += size * size
    return np.stack(tables), np.array(starts)


def _mi_and_entropy(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MI(gap sign; measure sign) and H(gap sign) of 2x2 tables (..., 4), cells ordered as the official
    scorer's (2 * [gap_i > gap_j] + [pred_i > pred_j]). An empty table (no pair of models drawn: only
    in a resample) has both 0, so it adds nothing to the sums they go into."""
    totals = tables.sum(axis=-1, keepdims=True)
    p = np.divide(tables, totals, out=np.zeros_like(tables), where=totals > 0)
    p_gap = np.stack([p[..., 0] + p[..., 1], p[..., 2] + p[..., 3]], axis=-1)
    p_meas = np.stack([p[..., 0] + p[..., 2], p[..., 1] + p[..., 3]], axis=-1)
    expected = p_gap[..., [0, 0, 1, 1]] * p_meas[..., [0, 1, 0, 1]]
    positive = p > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(positive, p * np.log2(np.where(positive, p, 1.0) / np.where(positive, expected, 1.0)), 0.0)
    return terms.sum(axis=-1), -(p_gap * np.log2(p_gap + 1e-12)).sum(axis=-1)


class BootstrapCMI:
    """The CMI of any predictions on a task under fixed model weights (B, N): ``self(pred) -> (B,)``.

    A resample with model i drawn w_i times counts the ordered pair (i, j) w_i w_j times. With the
    pair weights P (B, N^2) computed once, the counts of every table cell of every conditioning set
    are one sparse product P Z, Z the (N^2, 4 T) indicator of each pair's cell in each set (C nonzeros
    per pair). Per conditioning set the score is sum MI / sum H over its tables (the official
    mean / mean: the counts cancel); the CMI is the minimum over sets that have one.
    """

    def __init__(self, arrays: TaskArrays, weights: np.ndarray):
        weights = np.asarray(weights, dtype=np.float64)
        n = len(arrays.keys)
        self.tables, self.starts = _condition_tables(arrays)
        self.num_tables = int(self.tables.max()) + 1
        # (N^2, B), pair-major so that the sparse product runs over contiguous rows; float32 is exact
        # here (integer counts below 2^24) and halves the memory traffic
        pair = (weights.T[:, None, :] * weights.T[None, :, :]).reshape(n * n, len(weights))
        self.pair_weights = pair.astype(np.float32)
        if len(weights) and float(pair.sum(axis=0).max()) >= 2**24:
            self.pair_weights = pair  # too many pairs for float32 to count exactly
        gaps = arrays.gaps
        self.gap_cells = 2 * (gaps[:, None] > gaps[None, :]).ravel().astype(np.int64)
        self.num_models = n

    def __call__(self, pred: np.ndarray) -> np.ndarray:
        from scipy.sparse import csr_matrix

        pred = np.asarray(pred, dtype=np.float64)
        cells = self.gap_cells + (pred[:, None] > pred[None, :]).ravel()
        columns = (self.tables * 4 + cells[None, :]).ravel()  # (C * N^2,), set-major
        pairs = np.tile(np.arange(cells.size), len(self.tables))
        z = csr_matrix((np.ones(columns.size, dtype=self.pair_weights.dtype), (columns, pairs)),
                       shape=(4 * self.num_tables, cells.size))
        counts = (z @ self.pair_weights).T.reshape(-1, self.num_tables, 4).astype(np.float64)  # (B, T, 4)
        mi, h = _mi_and_entropy(counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = np.add.reduceat(mi, self.starts, axis=1) / np.add.reduceat(h, self.starts, axis=1)
        finite = np.where(np.isnan(scores), np.inf, scores).min(axis=1)
        return np.where(np.isinf(finite), np.nan, finite)


def resample_weights(num_models: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, N) multiplicities of a bootstrap resample of N models (each row sums to N)."""
    return rng.multinomial(num_models, np.full(num_models, 1.0 / num_models), size=resamples).astype(np.float64)


def seeded_rng(*keys: str) -> np.random.Generator:
    """A generator seeded by names (tasks, measures): the same inputs give the same resamples."""
    digest = hashlib.sha256("\0".join(("bootstrap",) + keys).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# -- which measures are tied with the best ---------------------------------------------------------


@dataclass
class Comparison:
    best: str
    p_value: float  # two-sided; 1.0 for the best itself
    difference: float  # best's mean CMI minus this one's (fraction)
    difference_interval: tuple[float, float]  # 95% bootstrap percentile interval of the difference
    tied: bool

    def as_dict(self) -> dict:
        return {"best": self.best, "p_value": self.p_value, "difference": self.difference,
                "difference_interval": list(self.difference_interval), "tied_with_best": self.tied}


def paired_test(per_task: dict[str, tuple[TaskArrays, dict[str, np.ndarray]]], resamples: int = RESAMPLES,
                alpha: float = ALPHA) -> dict[str, Comparison]:
    """Compare every measure with the best on the mean CMI over tasks.

    ``per_task``: task name -> (arrays, {measure: predictions (K_m, N), one row per repeat}); every
    measure must be present on every task. The point estimate of a measure is the mean over tasks of
    its mean CMI over repeats; the best is the highest. Each bootstrap resample draws, per task, the
    models with replacement (shared by all measures) and, per task and repeat count K, K repeat
    indices with replacement (shared by all measures with K repeats: repeat k of one is paired with
    repeat k of the other); a deterministic measure's single row is used as it is.
    """
    tasks = sorted(per_task)
    measures = sorted(set.intersection(*(set(per_task[t][1]) for t in tasks))) if tasks else []
    if not measures:
        return {}
    rng = seeded_rng(*tasks)
    boot = {m: np.zeros(resamples) for m in measures}
    point = {m: 0.0 for m in measures}
    for t in tasks:
        arrays, preds = per_task[t]
        scorer = BootstrapCMI(arrays, resample_weights(len(arrays.keys), resamples, rng))
        plain = BootstrapCMI(arrays, np.ones((1, len(arrays.keys))))
        repeat_draws: dict[int, np.ndarray] = {}
        for m in measures:
            rows = np.atleast_2d(preds[m])
            k = len(rows)
            if k not in repeat_draws:
                repeat_draws[k] = rng.multinomial(k, np.full(k, 1.0 / k), size=resamples) / k
            cmis = np.stack([scorer(row) for row in rows], axis=1)  # (B, K)
            boot[m] += np.nansum(cmis * repeat_draws[k], axis=1) / len(tasks)
            point[m] += float(np.mean([plain(row)[0] for row in rows])) / len(tasks)
    best = max(measures, key=lambda m: (point[m], m))
    out = {}
    for m in measures:
        if m == best:
            out[m] = Comparison(best, 1.0, 0.0, (0.0, 0.0), True)
            continue
        d = boot[best] - boot[m]
        p = float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))
        lo, hi = np.percentile(d, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        out[m] = Comparison(best, p, point[best] - point[m], (float(lo), float(hi)), p >= alpha)
    return out
