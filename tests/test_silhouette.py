"""The silhouette by one matrix product in torch equals scikit-learn's silhouette_score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import silhouette_score as sklearn_silhouette

from measures.representations import silhouette, silhouette_score


@pytest.mark.parametrize("n, d, k, chunk", [(300, 40, 5, 8192), (400, 3000, 10, 256), (60, 2, 7, 1)])
def test_silhouette_score_equals_sklearn(n, d, k, chunk):
    rng = np.random.default_rng(n + d)
    centres = rng.normal(size=(k, d)) * 0.5
    y = rng.integers(0, k, size=n)
    y[0] = k  # a class of one sample: sklearn scores it 0
    x = (rng.normal(size=(n, d)) + np.vstack([centres, np.zeros((1, d))])[y]).astype(np.float32)
    expected = sklearn_silhouette(x, y, metric="euclidean")
    assert silhouette_score(x, y, chunk=chunk) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_silhouette_of_relu_representations_with_duplicates_equals_sklearn():
    rng = np.random.default_rng(0)
    h = np.maximum(rng.normal(size=(200, 8, 3, 3)), 0).astype(np.float32)
    h[10] = h[11]  # a duplicate sample: distance 0 off the diagonal
    y = np.arange(200) % 4
    expected = sklearn_silhouette(h.reshape(200, -1), y)
    assert silhouette(h, y) == pytest.approx(expected, rel=1e-6)
    assert silhouette(h, y, pool="avg") == pytest.approx(sklearn_silhouette(h.mean(axis=(2, 3)), y), rel=1e-6)
