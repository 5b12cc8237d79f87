"""Label variation on a latent geometry graph (Lassance et al., arXiv 2011.12737), on arrays.

The k-nearest-neighbour graph of feature rows, its normalized Laplacian, and the smoothness
tr(Y^T L Y) / (4 n) of soft labels on it, as the authors' code computes them (``VPM_1/complexity.py``).
Used by ``vpm_label_variation`` (``measures.families.winners.representations``).
"""

from __future__ import annotations

import numpy as np


def knn_adjacency(features, k: int = 1) -> np.ndarray:
    """Lassance et al.'s directed binary k-NN graph (N, N) of the rows of ``features`` (float64).

    As ``generate_laplacian`` / ``RBF`` / ``knn_tf`` of the authors' code: rows flattened and scaled
    to unit L2 norm (``tf.math.l2_normalize``: divided by sqrt(max(|f|^2, 1e-12))); squared distances
    D = |a|^2 - 2 a.b + |b|^2; similarities S = exp(-D / (3 std(D))), std over all N^2 entries
    (ddof 0); A_ij = 1 when S_ij is at least the (k+1)-th largest value of row i (the row's own
    S_ii = 1 included), then A_ii = 0. Not symmetrized: row i marks i's k nearest rows (ties all
    marked). The RBF is monotone, so only the order of the distances matters.
    """
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n = len(f)
    if not 1 <= k < n:
        raise ValueError(f"knn_adjacency needs 1 <= k < number of rows ({n}), got k={k}")
    f = f / np.sqrt(np.maximum(np.einsum("ij,ij->i", f, f), 1e-12))[:, None]
    sq = np.einsum("ij,ij->i", f, f)
    d2 = sq[:, None] - 2.0 * (f @ f.T) + sq[None, :]
    spread = d2.std()
    if not spread > 0:
        raise ValueError("all feature rows coincide: the nearest-neighbour graph is undefined")
    similarity = np.exp(-d2 / (3.0 * spread))
    threshold = -np.sort(-similarity, axis=1)[:, k]
    a = (similarity >= threshold[:, None]).astype(np.float64)
    np.fill_diagonal(a, 0.0)
    return a


def normalized_laplacian(adjacency) -> np.ndarray:
    """L = I - D^-1/2 A D^-1/2 with D the row sums of A (not symmetrized; with k = 1 and no tie, L = I - A).

    A node with no edge (degree 0) keeps L_ii = 1 and a 0 row and column elsewhere.
    """
    a = np.asarray(adjacency, dtype=np.float64)
    degree = a.sum(axis=1)
    scale = np.zeros_like(degree)
    scale[degree > 0] = 1.0 / np.sqrt(degree[degree > 0])
    return np.eye(len(a)) - scale[:, None] * a * scale[None, :]


def label_variation(features, soft_labels, k: int = 1, n: int | None = None) -> float:
    """Lassance et al.'s ``smoothness``: trace(Y^T L Y) / (4 n), clipped to [0, 1000] (float64).

    L: ``normalized_laplacian(knn_adjacency(features, k))``; Y: (N, C) soft labels; n: the nominal
    sample count the authors divide by (their 2 * 2 * 500), default N. With k = 1 and no tie,
    trace(Y^T L Y) = sum_i Y_i . (Y_i - Y_nn(i)): 0 when every node carries its neighbour's labels.
    """
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    y = np.asarray(soft_labels, dtype=np.float64)
    if y.ndim != 2 or len(y) != len(f):
        raise ValueError(f"soft_labels must be (N, C) with N = {len(f)}, got shape {y.shape}")
    lap = normalized_laplacian(knn_adjacency(f, k))
    return float(np.clip(np.sum(y * (lap @ y)) / (4.0 * (len(f) if n is None else n)), 0.0, 1000.0))
