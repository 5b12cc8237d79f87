"""Robust sign-error (Dziugaite et al., NeurIPS 2020): a hand-computed case and a direct loop on random data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from benchmark.scores.robust import cell_sign_errors, hoeffding_weight, robust_sign_error
from benchmark.scores.scoring import TaskArrays, evaluate


def grid_task(rows, gaps):
    """TaskArrays of models with hyperparameter value codes ``rows`` (one tuple per model)."""
    rows = np.array(rows)
    names = [f"h{k}" for k in range(rows.shape[1])]
    return TaskArrays(keys=[f"model_{i}" for i in range(len(rows))], gaps=np.array(gaps, dtype=float), names=names,
                      codes={n: rows[:, k] for k, n in enumerate(names)},
                      sizes={n: int(rows[:, k].max()) + 1 for k, n in enumerate(names)})


def test_hand_computed_case():
    # models (a, b): gap, measure
    # m0 (0, 0): 0.1, 1   m1 (1, 0): 0.3, 2   m2 (0, 1): 0.2, 5   m3 (1, 1): 0.2, 3
    arrays = grid_task([(0, 0), (1, 0), (0, 1), (1, 1)], [0.1, 0.3, 0.2, 0.2])
    pred = np.array([1.0, 2.0, 5.0, 3.0])
    # cells of h0 (a): (m0, m1) same order -> 0; (m2, m3) equal gaps -> 1/2
    # cells of h1 (b): (m0, m2) same order -> 0; (m1, m3) gap down, measure up -> 1
    # (m0, m3) and (m1, m2) differ in both: no cell
    result = robust_sign_error(pred, arrays)
    assert result["per_hyperparameter"]["h0"] == {"mean": 0.25, "p90": pytest.approx(0.45), "max": 0.5, "cells": 2}
    assert result["per_hyperparameter"]["h1"] == {"mean": 0.5, "p90": pytest.approx(0.9), "max": 1.0, "cells": 2}
    assert result["robust"] == 0.5 and result["worst_hyperparameter"] == "h1"
    assert result["worst_cell"] == 1.0 and result["mean"] == 0.375
    # oriented the other way (a measure registered with sign -1): every strict comparison flips, ties stay 1/2
    flipped = robust_sign_error(pred, arrays, sign=-1)
    assert flipped["per_hyperparameter"]["h0"]["mean"] == 0.75 and flipped["per_hyperparameter"]["h1"]["mean"] == 0.5
    assert flipped["robust"] == 0.75 and flipped["worst_hyperparameter"] == "h0"
    # a constant measure ties everywhere: a coin flip
    assert robust_sign_error(np.ones(4), arrays)["robust"] == 0.5
    # evaluate() reports the same, for the .predict convention (+1) unless told otherwise
    scores = evaluate({f"model_{i}": v for i, v in enumerate(pred)}, arrays, sign=-1)
    assert scores["robust_sign_error"]["robust"] == 0.75


def test_hoeffding_weight_by_hand():
    # |dg| = 0.2, n = 100: psi = (1 - 2 exp(-2 * 100 * 0.1^2))^2 = (1 - 2 e^-2)^2, weight psi - 1/2
    assert hoeffding_weight(np.array([0.2]), 100)[0] == pytest.approx((1 - 2 * math.exp(-2)) ** 2 - 0.5)
    assert hoeffding_weight(np.array([0.0, 0.05]), 100).tolist() == [0.0, 0.0]  # within the noise: dropped
    arrays = grid_task([(0, 0), (1, 0), (0, 1), (1, 1)], [0.1, 0.3, 0.2, 0.2])
    filtered = cell_sign_errors(np.array([1.0, 2.0, 5.0, 3.0]), arrays, test_size=100)
    # only (m0, m1) has |dg| = 0.2 with a positive weight; the 0.1 differences weigh 0 at n = 100
    assert filtered["h0"].tolist() == [0.0] and filtered["h1"].tolist() == []


def loop_cell_errors(pred, arrays, sign=1, test_size=None, min_ess=0.0):
    """Direct transcription: every pair of configurations differing in one hyperparameter, all model pairs."""
    rows = [tuple(int(arrays.codes[h][i]) for h in arrays.names) for i in range(len(pred))]
    configs = sorted(set(rows))
    members = {c: [i for i, r in enumerate(rows) if r == c] for c in configs}
    out = {h: [] for h in arrays.names}
    for c1, c2 in itertools.combinations(configs, 2):
        differ = [k for k in range(len(arrays.names)) if c1[k] != c2[k]]
        if len(differ) != 1:
            continue
        weights, losses = [], []
        for i in members[c1]:
            for j in members[c2]:
                dc = sign * pred[i] - sign * pred[j]
                dg = arrays.gaps[i] - arrays.gaps[j]
                losses.append((1 - np.sign(dc) * np.sign(dg)) / 2)
                if test_size is None:
                    weights.append(1.0)
                else:
                    psi = max(0.0, 1 - 2 * math.exp(-2 * test_size * (abs(dg) / 2) ** 2)) ** 2
                    weights.append(max(psi - 0.5, 0.0))
        total = sum(weights)
        if total == 0 or total**2 / sum(w * w for w in weights) < min_ess:
            continue
        out[arrays.names[differ[0]]].append(sum(w * l for w, l in zip(weights, losses)) / total)
    return out


@pytest.mark.parametrize("replicates,test_size,min_ess,sign", [(1, None, 0.0, 1), (3, None, 0.0, -1),
                                                                (2, 400, 0.0, 1), (3, 400, 2.0, 1)])
def test_against_a_direct_loop_on_random_data(replicates, test_size, min_ess, sign):
    rng = np.random.default_rng(replicates * 10 + int(min_ess))
    grid = list(itertools.product(range(2), range(3), range(2)))
    rows = [c for c in grid for _ in range(replicates)]
    gaps = np.round(rng.random(len(rows)) * 0.3, 2)  # rounded: ties in the gap occur
    pred = rng.integers(0, 6, len(rows)).astype(float)  # and ties in the measure
    arrays = grid_task(rows, gaps)
    fast = cell_sign_errors(pred, arrays, sign, test_size, min_ess)
    slow = loop_cell_errors(pred, arrays, sign, test_size, min_ess)
    assert fast.keys() == slow.keys()
    for h in fast:
        assert sorted(fast[h].tolist()) == pytest.approx(sorted(slow[h]), abs=1e-12)
    result = robust_sign_error(pred, arrays, sign, test_size, min_ess)
    means = {h: np.mean(v) for h, v in slow.items() if v}
    assert result["robust"] == pytest.approx(max(means.values()))
    assert sum(s["cells"] for s in result["per_hyperparameter"].values()) == sum(len(v) for v in slow.values())
