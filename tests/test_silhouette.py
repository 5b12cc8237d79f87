"""The silhouette and the Calinski-Harabasz index computed in torch equal scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import calinski_harabasz_score as sklearn_calinski
from sklearn.metrics import silhouette_score as sklearn_silhouette

from measures.stats.representations import calinski_harabasz_score, silhouette, silhouette_score


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


@pytest.mark.parametrize("n, d, k, chunk", [(300, 40, 5, 8192), (400, 3000, 10, 256), (60, 2, 7, 1)])
def test_calinski_harabasz_score_equals_sklearn(n, d, k, chunk):
    rng = np.random.default_rng(n * d)
    y = rng.integers(0, k, size=n) * 3  # labels need not be 0..k-1
    y[0] = 3 * k  # a class of one sample
    x = (rng.normal(size=(n, d)) + rng.normal(size=(k + 1, d))[y // 3] * 0.3).astype(np.float32)
    assert calinski_harabasz_score(x, y, chunk=chunk) == pytest.approx(sklearn_calinski(x, y), rel=1e-9)


def test_calinski_harabasz_score_of_collapsed_classes_is_sklearns_one():
    x = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, 5.0], [2.0, 5.0]], dtype=np.float32)
    y = np.array([0, 0, 1, 1])
    assert calinski_harabasz_score(x, y) == sklearn_calinski(x, y) == 1.0
