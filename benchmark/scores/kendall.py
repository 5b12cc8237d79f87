"""Kendall's tau-b and the granulated Kendall coefficient (Jiang et al., ICLR 2020, eq. 4), batched.

One kernel, ``_group_tau``: over the unordered model pairs (i < j) of chosen groups, with signs
dx = sgn(x_i - x_j) and dy = sgn(y_i - y_j) per row, tau-b = sum dx dy / sqrt(sum dx^2 * sum dy^2) per
group: (concordant - discordant) / sqrt((n0 - n1)(n0 - n2)), n1 and n2 the pairs tied in x and in y,
exactly scipy's ``kendalltau`` (variant "b"); NaN where a group has fewer than two models or x or y is
constant on it. The group sums are one matrix product of the (rows, pairs) sign products with the
pairs' group one-hot. Rows pair up like numpy broadcasting (R x rows against R y rows, or one of them 1),
or with ``cross`` every x row meets every y row (the sign differences of each row computed once).

* ``kendall_tau_batch(x, y)``: one group, all models.
* ``granulated_kendall_batch(x, y, arrays)``: for each hyperparameter h, the mean over the cells of the
  other hyperparameters (cells where tau is undefined skipped) of tau among the models that differ only
  in h; psi = mean over hyperparameters with a value.
"""

from __future__ import annotations

import math

import numpy as np

CHUNK_ELEMENTS = 1 << 23  # about 8M (row, pair) entries at a time


def _rows(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"{what}: expected (rows, models) or (models,), got shape {x.shape}")
    return x


def _group_tau(x, y, i: np.ndarray, j: np.ndarray, group: np.ndarray, groups: int, cross: bool = False) -> np.ndarray:
    """tau-b of rows of ``x`` against rows of ``y`` over the pairs (i[p], j[p]) of group[p]: (R, groups)
    with rows paired (broadcast), or (len(y), len(x), groups) with ``cross`` (every x row against every y)."""
    x, y = _rows(x, "x"), _rows(y, "y")
    if x.shape[1] != y.shape[1] or (not cross and len(x) != len(y) and 1 not in (len(x), len(y))):
        raise ValueError(f"cannot pair rows of shapes {x.shape} and {y.shape}")
    onehot = np.zeros((len(i), groups))
    onehot[np.arange(len(i)), group] = 1.0
    if cross:
        dx = np.sign(x[:, i] - x[:, j])
        nx = (dx * dx) @ onehot  # (P, groups)
        out = np.empty((len(y), len(x), groups))
        chunk = max(1, CHUNK_ELEMENTS // max(1, len(i) * len(x)))
        for start in range(0, len(y), chunk):
            dy = np.sign(y[start:start + chunk, i] - y[start:start + chunk, j])
            ny = (dy * dy) @ onehot  # (G, groups)
            if groups == 1:
                score = (dy @ dx.T)[:, :, None]
            else:
                score = np.stack([(dy * row) @ onehot for row in dx], axis=1)
            out[start:start + chunk] = _ratio(score, nx[None, :, :] * ny[:, None, :])
        return out
    rows = max(len(x), len(y))
    out = np.empty((rows, groups))
    chunk = max(1, CHUNK_ELEMENTS // max(1, len(i)))
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        xs = x if len(x) == 1 else x[start:stop]
        ys = y if len(y) == 1 else y[start:stop]
        dx, dy = np.sign(xs[:, i] - xs[:, j]), np.sign(ys[:, i] - ys[:, j])
        score = np.broadcast_to(dx * dy, (stop - start, len(i))) @ onehot
        out[start:stop] = _ratio(score, ((dx * dx) @ onehot) * ((dy * dy) @ onehot))
    return out


def _ratio(score: np.ndarray, squared: np.ndarray) -> np.ndarray:
    """score / sqrt(squared), NaN where squared is 0."""
    denominator = np.sqrt(squared)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, score / np.where(denominator > 0, denominator, 1.0), np.nan)


def kendall_tau_batch(x, y, cross: bool = False) -> np.ndarray:
    """Kendall's tau-b of each row pair of ``x`` and ``y`` ((R, N) or (N,) each): (R,); with ``cross``,
    (len(y), len(x)), [g, p] the tau of ``x[p]`` against ``y[g]``."""
    n = _rows(x, "x").shape[1]
    i, j = np.triu_indices(n, k=1)
    return _group_tau(x, y, i, j, np.zeros(len(i), dtype=np.int64), 1, cross)[..., 0]


def kendall_tau(pred: np.ndarray, gaps: np.ndarray) -> float:
    """Kendall's tau-b between a measure and the generalization gaps (NaN with fewer than two models)."""
    if len(pred) < 2:
        return float("nan")
    return float(kendall_tau_batch(pred, gaps)[0])


def cell_kendall_taus(pred: np.ndarray, gaps: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between ``pred`` and ``gaps`` within each group of models (``cells``: a group id
    per model, 0 .. G-1), all groups at once; NaN where a group has no defined tau."""
    cells = np.asarray(cells, dtype=np.int64)
    i, j = np.triu_indices(len(cells), k=1)
    same = cells[i] == cells[j]
    size = int(cells.max()) + 1 if len(cells) else 0
    return _group_tau(pred, gaps, i[same], j[same], cells[i[same]], size)[0]


def _cells_of(arrays, name: str) -> np.ndarray:
    """Per model, its cell of the hyperparameters other than ``name`` (0 .. cells - 1)."""
    key = np.zeros(len(arrays.keys), dtype=np.int64)
    for other in arrays.names:
        if other != name:
            key = key * arrays.sizes[other] + np.asarray(arrays.codes[other])
    return np.unique(key, return_inverse=True)[1].ravel()


def granulated_kendall_batch(x, y, arrays, cross: bool = False) -> dict[str, np.ndarray]:
    """Per hyperparameter, the granulated Kendall coefficient of each row pair, and ``"psi"``: (R,) each, or
    (len(y), len(x)) with ``cross`` (as ``kendall_tau_batch``)."""
    n = len(arrays.keys)
    i, j = np.triu_indices(n, k=1)
    pairs, groups, offsets = [], [], []
    offset = 0
    for name in arrays.names:
        cells = _cells_of(arrays, name)
        same = cells[i] == cells[j]
        pairs.append((i[same], j[same]))
        groups.append(offset + cells[i[same]])
        offsets.append((offset, offset + int(cells.max()) + 1 if n else offset))
        offset = offsets[-1][1]
    if not arrays.names:
        rows_x, rows_y = len(_rows(x, "x")), len(_rows(y, "y"))
        return {"psi": np.full((rows_y, rows_x) if cross else max(rows_x, rows_y), np.nan)}
    taus = _group_tau(x, y, np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]),
                      np.concatenate(groups), offset, cross)
    out = {}
    with np.errstate(invalid="ignore"):
        for name, (lo, hi) in zip(arrays.names, offsets):
            block = taus[..., lo:hi]
            counts = (~np.isnan(block)).sum(axis=-1)
            out[name] = np.where(counts > 0, np.nansum(block, axis=-1) / np.maximum(counts, 1), np.nan)
        per = np.stack([out[name] for name in arrays.names])
        counts = (~np.isnan(per)).sum(axis=0)
        out["psi"] = np.where(counts > 0, np.nansum(per, axis=0) / np.maximum(counts, 1), np.nan)
    return out


def granulated_kendall(pred: np.ndarray, arrays) -> dict[str, float]:
    """Granulated Kendall coefficient of one prediction vector: ``{h: coefficient, ..., "psi": mean}``."""
    batch = granulated_kendall_batch(pred, arrays.gaps, arrays)
    return {k: float(v[0]) if not math.isnan(v[0]) else float("nan") for k, v in batch.items()}
