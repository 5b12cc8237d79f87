"""The CMI on bootstrap resamples (vectorized) against the official scorer, and the paired test with the best."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.bootstrap import BootstrapCMI, paired_test, resample_weights
from scripts.perf.synthetic import TASK1_GRID, synthetic_task
from benchmark.scoring import TaskArrays, conditional_mutual_information


def official(pred, arrays):
    return conditional_mutual_information(dict(zip(arrays.keys, pred)), arrays).cmi


@pytest.mark.parametrize("grid", [TASK1_GRID, {"a": 2, "b": 2, "c": 2, "d": 2, "e": 2}, {"a": 3}])
def test_unit_weights_give_the_official_cmi(grid):
    arrays, _ = synthetic_task(grid, seed=3, tie_levels=12)
    rng = np.random.default_rng(0)
    for pred in (rng.integers(0, 20, len(arrays.keys)).astype(float), arrays.gaps, -arrays.gaps, np.zeros(len(arrays.keys))):
        fast = BootstrapCMI(arrays, np.ones((1, len(arrays.keys))))(pred)[0]
        assert fast == pytest.approx(official(pred, arrays), abs=1e-12)


def test_resamples_give_the_official_cmi_of_the_resampled_zoo():
    """A resample drawing model i w_i times is the zoo of those copies: the official scorer, called on it
    in a loop (duplicates and all), gives the same CMI as the weighted computation."""
    arrays, _ = synthetic_task({"a": 2, "b": 2, "c": 3, "d": 2}, seed=5, tie_levels=15)
    rng = np.random.default_rng(1)
    n = len(arrays.keys)
    index = rng.integers(0, n, size=(60, n))
    weights = np.stack([np.bincount(i, minlength=n) for i in index]).astype(float)
    pred = rng.integers(0, 10, n).astype(float)
    fast = BootstrapCMI(arrays, weights)(pred)
    for b, i in enumerate(index):
        keys = [f"model_{j}" for j in range(n)]
        copies = TaskArrays(keys=keys, gaps=arrays.gaps[i], names=arrays.names,
                            codes={h: c[i] for h, c in arrays.codes.items()}, sizes=arrays.sizes)
        assert fast[b] == pytest.approx(official(pred[i], copies), abs=1e-12)
    assert resample_weights(n, 5, rng).sum(axis=1).tolist() == [n] * 5


def test_paired_test_marks_ties_and_real_differences():
    arrays, _ = synthetic_task({"a": 2, "b": 2, "c": 2, "d": 2, "e": 2, "f": 2}, seed=7)
    rng = np.random.default_rng(2)
    noise = rng.random((3, len(arrays.keys)))
    preds = {
        "perfect": np.stack([arrays.gaps] * 3),  # CMI 1 in every repeat
        "perfect_cubed": (arrays.gaps ** 3)[None],  # a deterministic monotone copy: the same CMI
        "noise": noise,  # unrelated to the gaps
    }
    result = paired_test({"t": (arrays, preds)})
    assert result["perfect"].best == "perfect_cubed" or result["perfect"].best == "perfect"
    best = result["noise"].best
    assert result[best].tied and result[best].p_value == 1.0
    other = "perfect_cubed" if best == "perfect" else "perfect"
    assert result[other].tied and result[other].p_value == 1.0 and result[other].difference == 0.0
    assert not result["noise"].tied and result["noise"].p_value < 0.05
    assert result["noise"].difference == pytest.approx(1 - np.mean([official(p, arrays) for p in noise]))
    lo, hi = result["noise"].difference_interval
    assert 0 < lo <= hi
    assert paired_test({"t": (arrays, preds)})["noise"].p_value == result["noise"].p_value  # seeded: reproducible
