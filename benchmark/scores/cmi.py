"""The official PGDL conditional mutual information (SCORING.md), one kernel for one row or many.

``cmi_batch(preds, gaps, arrays)`` scores prediction rows against gap rows on a task's grid: rows are
paired and broadcast like numpy arrays (P rows against G rows with P == G, or either one a single row),
so one call scores a measure's repeats, one measure against many resampled gap vectors, or row r of
one against row r of the other.

How: for one row pair, every ordered model pair (i, j), self pairs included, falls in one 2x2 table of
a conditioning set: the table of (g_i, g_j), g the combination of the set's two hyperparameter values
(S combinations, S^2 tables). With E the set's one-hot (N, S) and X an (N, N) indicator of the pairs,
the table counts of X are E^T X E. Three indicators are needed per row: gap_i > gap_j (G), pred_i >
pred_j (M) and both (G & M); the tables' totals are the group sizes' products and do not depend on the
row. So the counts of every table of every conditioning set, for a chunk of rows, are two matrix
products: [E_1 ... E_C]^T @ X (N, rows * N), then each set's block of that @ E_c. The four cells of a table follow
from those three counts and its total, and MI and H are then computed as the official scorer does:
with p = count / total, MI = sum over cells with p > 0 of p log2(p / (p_gap p_meas)) and
H = -sum_g p_g log2(p_g + 1e-12), the entropy of the gap-sign marginal (so a constant measure scores
exactly 0). A set's score is
mean_k MI_k / mean_k H_k over its S^2 tables, empty tables adding 0 to both (the official mean / mean);
the task's CMI is the minimum over sets, sets without a score (H = 0: all gaps equal) left out.
The ordered pairs (h1, h2) and (h2, h1) have the same tables in another order, hence the same score:
it is computed once per unordered pair. With fewer than two hyperparameters, the set is all there are.

Counts are integers below N^2 < 2^24 for N < 4096, so the float32 products are exact.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

CHUNK_ELEMENTS = 1 << 23  # rows per chunk: about 8M ordered model pairs (32 MB of float32) at a time


def conditioning_sets(names: list[str]) -> list[tuple[str, ...]]:
    """Ordered pairs of distinct hyperparameters; with fewer than two, all there are (an extension)."""
    if len(names) >= 2:
        return list(itertools.permutations(names, 2))
    return [tuple(names)]


@dataclass
class CMIGrid:
    """What the CMI of a task needs besides the rows: per unordered conditioning set, its model groups."""

    sets: list[tuple[str, ...]]  # unordered sets, as sorted name tuples in ``names`` order
    onehot: np.ndarray  # float32 (N, sum S_c): the sets' one-hots side by side
    slices: list[slice]  # each set's columns in ``onehot``
    totals: list[np.ndarray]  # float64 (S_c * S_c,): ordered model pairs per table
    conditions: list[tuple[str, ...]]  # the official ordered conditioning sets
    condition_set: list[int]  # index into ``sets`` of each condition

    @classmethod
    def from_arrays(cls, arrays) -> "CMIGrid":
        names = list(arrays.names)
        n = len(arrays.keys)
        sets = list(itertools.combinations(names, 2)) if len(names) >= 2 else [tuple(names)]
        blocks, slices, totals = [], [], []
        start = 0
        for cond in sets:
            code, size = np.zeros(n, dtype=np.int64), 1
            for name in cond:
                code = code * arrays.sizes[name] + np.asarray(arrays.codes[name])
                size *= arrays.sizes[name]
            onehot = np.zeros((n, size), dtype=np.float32)
            onehot[np.arange(n), code] = 1.0
            counts = onehot.sum(axis=0).astype(np.float64)
            blocks.append(onehot)
            slices.append(slice(start, start + size))
            totals.append(np.outer(counts, counts).ravel())
            start += size
        index = {frozenset(s): k for k, s in enumerate(sets)}
        conditions = conditioning_sets(names)
        return cls(sets, np.concatenate(blocks, axis=1), slices, totals, conditions,
                   [index[frozenset(c)] for c in conditions])


def task_grid(arrays) -> CMIGrid:
    """The ``CMIGrid`` of ``arrays``, computed once and kept on it."""
    grid = getattr(arrays, "_cmi_grid", None)
    if grid is None:
        grid = CMIGrid.from_arrays(arrays)
        try:
            arrays._cmi_grid = grid
        except AttributeError:  # a read-only stand-in: recompute next time
            pass
    return grid


@dataclass
class CMIBatch:
    """Scores of R row pairs: ``conditions[(h1, h2)]`` (R,) per official conditioning set, and ``cmi`` (R,)
    their minimum (NaN where no set has a score)."""

    conditions: dict[tuple[str, ...], np.ndarray]
    cmi: np.ndarray


def _rows(x, n: int, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != n:
        raise ValueError(f"{what}: expected (rows, {n}) or ({n},), got shape {x.shape}")
    return x


def _xlogx(x: np.ndarray) -> np.ndarray:
    """x log2 x, 0 at 0."""
    return x * np.log2(np.where(x > 0, x, 1.0))


def _table_counts(indicator: np.ndarray, grid: CMIGrid) -> list[np.ndarray]:
    """Per set, the counts (rows, S_c * S_c) of the ordered pairs marked in ``indicator`` (N, rows, N):
    indicator[i, r, j] marks the pair (i, j) of row r. Two matrix products: the groups of i for every set
    at once, then per set the groups of j."""
    n, rows, _ = indicator.shape
    left = grid.onehot.T @ indicator.reshape(n, rows * n)  # (sum S, rows * N): i summed within its groups
    out = []
    for sl in grid.slices:
        size = sl.stop - sl.start
        counts = left[sl].reshape(size * rows, n) @ grid.onehot[:, sl]  # (S_a * rows, S_b)
        out.append(counts.reshape(size, rows, size).transpose(1, 0, 2).reshape(rows, size * size).astype(np.float64))
    return out


def _greater(x: np.ndarray) -> np.ndarray:
    """(N, rows, N) float32 indicator x[r, i] > x[r, j] of rows x (rows, N)."""
    return (x.T[:, :, None] > x[None, :, :]).astype(np.float32)


def _set_scores(n_gap, n_meas, n_both, totals) -> np.ndarray:
    """Per row, sum_k MI_k / sum_k H_k over one set's tables (NaN where every H_k is 0), in the official
    scorer's arithmetic: MI = sum over cells with p > 0 of p log2(p / (p_gap p_meas)), p = count / total."""
    t = np.broadcast_to(totals[None, :], n_both.shape)
    filled = t > 0
    safe = np.where(filled, t, 1.0)
    p_up, p_meas = n_gap / safe, n_meas / safe
    p_down, p_still = (t - n_gap) / safe, (t - n_meas) / safe
    mi = np.zeros(n_both.shape)
    for cell, gap_p, meas_p in (((n_both), p_up, p_meas), (n_gap - n_both, p_up, p_still),
                                (n_meas - n_both, p_down, p_meas), (t - n_gap - n_meas + n_both, p_down, p_still)):
        p = cell / safe
        positive = p > 0
        mi += np.where(positive, p * np.log2(np.where(positive, p, 1.0) / np.where(positive, gap_p * meas_p, 1.0)), 0.0)
    entropy = np.where(filled, -(p_up * np.log2(p_up + 1e-12) + p_down * np.log2(p_down + 1e-12)), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(filled, mi, 0.0).sum(axis=1) / entropy.sum(axis=1)


def cmi_batch(preds, gaps, arrays, cross: bool = False) -> CMIBatch:
    """The official CMI of prediction rows against gap rows on the grid of ``arrays`` (a ``TaskArrays``).

    ``preds`` (P, N) or (N,), ``gaps`` (G, N) or (N,), models in ``arrays.keys`` order. By default rows pair
    up like numpy broadcasting (P == G, or one of them 1): R = max(P, G) results, shape (R,). With
    ``cross`` every prediction row is scored against every gap row: results of shape (G, P), [g, p] the
    score of ``preds[p]`` against ``gaps[g]`` (the gap-only and prediction-only counts computed once).
    """
    n = len(arrays.keys)
    preds, gaps = _rows(preds, n, "predictions"), _rows(gaps, n, "gaps")
    if not cross and len(preds) != len(gaps) and 1 not in (len(preds), len(gaps)):
        raise ValueError(f"cannot pair {len(preds)} prediction rows with {len(gaps)} gap rows")
    grid = task_grid(arrays)
    if cross:
        shape, n_gaps, n_preds = (len(gaps), len(preds)), len(gaps), len(preds)
    else:
        shape = (max(len(preds), len(gaps)),)
    per_set = np.empty((len(grid.sets), int(np.prod(shape))))
    # chunks of whole gap rows (cross) or of paired rows, about CHUNK_ELEMENTS pairs each
    width = len(preds) if cross else 1
    chunk = max(1, CHUNK_ELEMENTS // max(1, n * n * width))
    fixed_pred = _greater(preds) if cross or len(preds) == 1 else None
    fixed_meas = _table_counts(fixed_pred, grid) if fixed_pred is not None else None
    fixed_gap = _greater(gaps) if not cross and len(gaps) == 1 else None
    fixed_gap_counts = _table_counts(fixed_gap, grid) if fixed_gap is not None else None
    rows = len(gaps) if cross else shape[0]
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        if cross:
            g = _greater(gaps[start:stop])
            both = _table_counts((g[:, :, None, :] * fixed_pred[:, None, :, :]).reshape(n, -1, n), grid)
            gap = [np.repeat(c, n_preds, axis=0) for c in _table_counts(g, grid)]
            meas = [np.tile(c, (stop - start, 1)) for c in fixed_meas]
            cols = slice(start * n_preds, stop * n_preds)
        else:
            m = fixed_pred if fixed_pred is not None else _greater(preds[start:stop])
            g = fixed_gap if fixed_gap is not None else _greater(gaps[start:stop])
            both = _table_counts(np.broadcast_to(m * g, (n, stop - start, n)), grid)
            meas = fixed_meas if fixed_meas is not None else _table_counts(m, grid)
            gap = fixed_gap_counts if fixed_gap_counts is not None else _table_counts(g, grid)
            cols = slice(start, stop)
        for k, totals in enumerate(grid.totals):
            per_set[k, cols] = _set_scores(gap[k], meas[k], both[k], totals)
    per_set = per_set.reshape((len(grid.sets),) + shape)
    conditions = {cond: per_set[k] for cond, k in zip(grid.conditions, grid.condition_set)}
    with np.errstate(invalid="ignore"):
        masked = np.where(np.isnan(per_set), np.inf, per_set).min(axis=0)
    return CMIBatch(conditions, np.where(np.isinf(masked), np.nan, masked))
