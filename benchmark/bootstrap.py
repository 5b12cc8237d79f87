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
from scipy.sparse import csr_matrix

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


def _condition_tables(arrays: TaskArrays) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """For every unordered conditioning set (the two orders of a pair share their tables and score):
    the table of every ordered model pair (i, j), numbered across sets, as (C, N * N); the index of
    each set's first table (C,); and each model's group one-hot (N, G) per set. Pair (i, j) of set c
    is in table start_c + g_i * G + g_j, g the combination of the set's hyperparameter values."""
    seen, tables, starts, groups = set(), [], [], []
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
        groups.append(np.eye(size)[code])
        offset += size * size
    return np.stack(tables), np.array(starts), groups


def _xlogx(x: np.ndarray) -> np.ndarray:
    """x log2 x, 0 at 0."""
    return x * np.log2(np.where(x > 0, x, 1.0))


class BootstrapCMI:
    """The CMI of any predictions on a task under fixed model weights (B, N): ``self(pred) -> (B,)``.

    A resample with model i drawn w_i times counts the ordered pair (i, j) w_i w_j times. With the
    pair weights P (B, N^2) computed once, the counts of every table cell of every conditioning set
    are one sparse product P Z, Z the indicator of each pair's table and cell in each set (C nonzeros
    per pair). Each table's total and its count of pairs with gap_i > gap_j do not depend on the
    measure and are counted once; a measure then needs only its pairs with pred_i > pred_j, split by
    the gap sign. Per conditioning set the score is sum MI / sum H over its tables (the official
    mean / mean: the counts cancel); the CMI is the minimum over sets that have one.
    """

    def __init__(self, arrays: TaskArrays, weights: np.ndarray):
        weights = np.asarray(weights, dtype=np.float64)
        n = len(arrays.keys)
        self.tables, self.starts, groups = _condition_tables(arrays)
        self.num_tables = int(self.tables.max()) + 1
        # (N^2, B), pair-major so that the sparse product runs over contiguous rows; float32 is exact
        # for integer weights whose pair counts stay below 2^24, and halves the memory traffic
        exact32 = not len(weights) or float(weights.sum(axis=1).max()) ** 2 < 2**24  # every count below 2^24
        columns = np.ascontiguousarray(weights.T, dtype=np.float32 if exact32 else np.float64)
        self.pair_weights = (columns[:, None, :] * columns[None, :, :]).reshape(n * n, len(weights))
        gaps = arrays.gaps
        self.gap_greater = (gaps[:, None] > gaps[None, :]).ravel()
        # what does not depend on the measure: each table's total and its pairs with gap_i > gap_j,
        # their x log x terms, and H(gap sign) summed over each conditioning set's tables
        sums = [weights @ g for g in groups]  # (B, G): weight of each group; a table's total is a product
        self.totals = np.concatenate([(w[:, :, None] * w[:, None, :]).reshape(len(weights), -1) for w in sums], axis=1)
        self.n_gap = self._count(self.gap_greater, np.zeros(n * n, dtype=np.int64), 1)[..., 0]
        self.safe_totals = np.where(self.totals > 0, self.totals, 1.0)
        self.gap_terms = _xlogx(self.totals) - _xlogx(self.n_gap) - _xlogx(self.totals - self.n_gap)
        p_gap = np.stack([1 - self.n_gap / self.safe_totals, self.n_gap / self.safe_totals], axis=-1)
        entropy = np.where(self.totals > 0, -(p_gap * np.log2(p_gap + 1e-12)).sum(axis=-1), 0.0)  # as the scorer
        self.entropy = np.add.reduceat(entropy, self.starts, axis=1)

    def _count(self, selected: np.ndarray, cells: np.ndarray, num_cells: int) -> np.ndarray:
        """Weighted counts (B, T, num_cells) of the ``selected`` ordered pairs, by table and by ``cells``."""
        pairs = np.flatnonzero(selected)
        columns = (self.tables[:, pairs] * num_cells + cells[pairs][None, :]).ravel()
        z = csr_matrix((np.ones(columns.size, dtype=self.pair_weights.dtype), (columns, np.tile(pairs, len(self.tables)))),
                       shape=(num_cells * self.num_tables, len(selected)))
        return (z @ self.pair_weights).T.reshape(-1, self.num_tables, num_cells).astype(np.float64)

    def __call__(self, pred: np.ndarray) -> np.ndarray:
        pred = np.asarray(pred, dtype=np.float64)
        # only pairs with pred_i > pred_j (at most half of them) need counting: the cells with
        # pred_i <= pred_j follow from the totals and the gap counts
        greater = (pred[:, None] > pred[None, :]).ravel()
        counts = self._count(greater, self.gap_greater.astype(np.int64), 2)
        n01, n11 = counts[..., 0], counts[..., 1]
        n_meas = n01 + n11
        # MI = H(gap) + H(meas) - H(gap, meas), in counts: (sum xlogx(cells) - xlogx(margins) + xlogx(total)) / total
        mi = (_xlogx(self.totals - self.n_gap - n01) + _xlogx(n01) + _xlogx(self.n_gap - n11) + _xlogx(n11)
              - _xlogx(n_meas) - _xlogx(self.totals - n_meas) + self.gap_terms) / self.safe_totals
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = np.add.reduceat(mi, self.starts, axis=1) / self.entropy
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
    measures = [m for m in measures if math.isfinite(point[m])]  # undefined CMI (all gaps equal): no test
    if not measures:
        return {}
    best = min(measures, key=lambda m: (-point[m], m))  # the leaderboard's order: by mean, then by name
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
