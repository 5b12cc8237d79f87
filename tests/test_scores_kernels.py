"""The batched kernels of ``benchmark.scores`` against independent references: the CMI against the
plain-loop transcription of the official scorer (``reference_cmi``), Kendall's tau-b and the granulated
Kendall coefficient against scipy's ``kendalltau`` cell by cell, the batched robust sign-error against
the single-vector one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kendalltau

from scripts.perf.synthetic import synthetic_task
from tests.reference_cmi import models_from_task, reference_cmi
from benchmark.scores.cmi import cmi_batch
from benchmark.scores.kendall import granulated_kendall_batch, kendall_tau_batch
from benchmark.scores.robust import robust_batch, robust_sign_error
from benchmark.scores.scoring import TaskArrays
from task_loaders import load_task


def reference_rows(preds: np.ndarray, gaps: np.ndarray, arrays: TaskArrays) -> tuple[np.ndarray, list[dict]]:
    """The reference loop's CMI and per-pair scores of each row pair."""
    cmis, pairs = [], []
    for p, g in zip(preds, gaps):
        models = {k: {"hparams": {h: int(arrays.codes[h][i]) for h in arrays.names}, "gap": float(g[i])}
                  for i, k in enumerate(arrays.keys)}
        score, per_pair = reference_cmi(dict(zip(arrays.keys, map(float, p))), models)
        cmis.append(score)
        pairs.append(per_pair)
    return np.array(cmis), pairs


def subset(arrays: TaskArrays, keep: np.ndarray) -> TaskArrays:
    return TaskArrays(keys=[arrays.keys[i] for i in keep], gaps=arrays.gaps[keep], names=arrays.names,
                      codes={h: c[keep] for h, c in arrays.codes.items()}, sizes=arrays.sizes)


@pytest.mark.parametrize("sizes,seed,drop", [({"a": 2, "b": 3, "c": 2}, 0, 0), ({"w": 2, "d": 2, "lr": 3, "bs": 2}, 2, 0),
                                             ({"a": 2, "b": 2, "c": 2, "d": 2, "e": 2}, 4, 9)])
def test_cmi_batch_equals_the_reference_loop_row_by_row(sizes, seed, drop):
    """One row and batches (paired rows, one row against many, and the cross product) on complete grids and
    on a 2^5 grid with 9 of its 32 models missing, with ties in predictions and gaps, to 1e-12."""
    arrays, _ = synthetic_task(sizes, seed=seed, tie_levels=7)
    rng = np.random.default_rng(seed)
    if drop:
        arrays = subset(arrays, np.sort(rng.choice(len(arrays.keys), len(arrays.keys) - drop, replace=False)))
    n = len(arrays.keys)
    preds = rng.integers(0, 6, (4, n)).astype(float)
    gaps = np.round(rng.random((4, n)) * 5) / 5
    expected, per_pair = reference_rows(preds, gaps, arrays)
    paired = cmi_batch(preds, gaps, arrays)
    assert np.max(np.abs(paired.cmi - expected)) <= 1e-12
    for r in range(4):
        for cond, value in per_pair[r].items():
            assert abs(paired.conditions[cond][r] - value) <= 1e-12
        single = cmi_batch(preds[r], gaps[r], arrays)
        assert single.cmi.shape == (1,) and abs(single.cmi[0] - expected[r]) <= 1e-12
    against_one = cmi_batch(preds, gaps[1], arrays).cmi
    assert np.max(np.abs(against_one - reference_rows(preds, np.repeat(gaps[1:2], 4, axis=0), arrays)[0])) <= 1e-12
    cross = cmi_batch(preds[:3], gaps, arrays, cross=True).cmi
    assert cross.shape == (4, 3)
    for g in range(4):
        assert np.max(np.abs(cross[g] - reference_rows(preds[:3], np.repeat(gaps[g:g + 1], 3, axis=0), arrays)[0])) <= 1e-12


def test_cmi_batch_on_the_fixture_task_and_its_published_values(toy_task_path):
    task = load_task(toy_task_path)
    arrays = TaskArrays.from_task(task)
    models = models_from_task(task)
    rng = np.random.default_rng(1)
    preds = np.vstack([arrays.gaps, -arrays.gaps, np.zeros_like(arrays.gaps), rng.integers(0, 4, (3, len(arrays.gaps)))])
    result = cmi_batch(preds, arrays.gaps, arrays).cmi
    assert result[0] == pytest.approx(1.0000000000032, abs=1e-13)  # SCORING.md's published values
    assert result[1] == pytest.approx(0.583479, abs=5e-7)
    assert result[2] == 0.0
    for r in range(3, 6):
        assert abs(result[r] - reference_cmi(dict(zip(arrays.keys, preds[r])), models)[0]) <= 1e-12


def test_cmi_batch_refuses_rows_that_do_not_pair():
    arrays, _ = synthetic_task({"a": 2, "b": 2}, seed=0)
    with pytest.raises(ValueError, match="cannot pair 2 prediction rows with 3 gap rows"):
        cmi_batch(np.zeros((2, 4)), np.zeros((3, 4)), arrays)
    with pytest.raises(ValueError, match="expected"):
        cmi_batch(np.zeros((2, 5)), np.zeros(4), arrays)


def test_kendall_tau_batch_is_scipys_with_ties():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, size=(6, 15)).astype(float), rng.integers(0, 5, size=(6, 15)).astype(float)
    x[2] = 1.0  # constant: undefined
    expected = np.array([kendalltau(a, b).statistic for a, b in zip(x, y)])
    got = kendall_tau_batch(x, y)
    assert np.isnan(got[2]) and np.isnan(expected[2])
    keep = [0, 1, 3, 4, 5]
    assert np.max(np.abs(got[keep] - expected[keep])) <= 1e-12
    cross = kendall_tau_batch(x[:3], y, cross=True)
    for g in range(6):
        for p in (0, 1):
            assert abs(cross[g, p] - kendalltau(x[p], y[g]).statistic) <= 1e-12
    assert abs(kendall_tau_batch(x[0], y)[4] - kendalltau(x[0], y[4]).statistic) <= 1e-12


def scipy_granulated(x: np.ndarray, y: np.ndarray, arrays: TaskArrays) -> dict[str, float]:
    """Granulated Kendall by its definition: per hyperparameter, scipy's tau in each cell of the others."""
    out = {}
    for h in arrays.names:
        others = [o for o in arrays.names if o != h]
        cells = {}
        for i in range(len(x)):
            cells.setdefault(tuple(int(arrays.codes[o][i]) for o in others), []).append(i)
        taus = [kendalltau(x[m], y[m]).statistic for m in cells.values() if len(m) >= 2]
        taus = [t for t in taus if not math.isnan(t)]
        out[h] = float(np.mean(taus)) if taus else float("nan")
    values = [v for v in out.values() if not math.isnan(v)]
    out["psi"] = float(np.mean(values)) if values else float("nan")
    return out


def test_granulated_kendall_batch_equals_its_definition_with_scipy():
    arrays, _ = synthetic_task({"a": 2, "b": 3, "c": 3}, seed=2, tie_levels=5)
    rng = np.random.default_rng(3)
    n = len(arrays.keys)
    x, y = rng.integers(0, 3, (5, n)).astype(float), rng.integers(0, 4, (5, n)) / 4
    paired = granulated_kendall_batch(x, y, arrays)
    cross = granulated_kendall_batch(x[:2], y, arrays, cross=True)
    for r in range(5):
        expected = scipy_granulated(x[r], y[r], arrays)
        for key, value in expected.items():
            assert paired[key][r] == pytest.approx(value, abs=1e-12, nan_ok=True)
        for p in range(2):
            assert cross["psi"][r, p] == pytest.approx(scipy_granulated(x[p], y[r], arrays)["psi"], abs=1e-12)


@pytest.mark.parametrize("test_size", [None, 200])
def test_robust_batch_equals_the_single_vector_score(test_size):
    arrays, _ = synthetic_task({"a": 2, "b": 3, "c": 2}, seed=6, tie_levels=9)
    rng = np.random.default_rng(5)
    n = len(arrays.keys)
    preds, gaps = rng.integers(0, 4, (4, n)).astype(float), np.round(rng.random((3, n)) * 8) / 8
    cross = robust_batch(preds, gaps, arrays, sign=-1, test_size=test_size, cross=True)
    for g in range(3):
        copy = TaskArrays(keys=arrays.keys, gaps=gaps[g], names=arrays.names, codes=arrays.codes, sizes=arrays.sizes)
        for p in range(4):
            expected = robust_sign_error(preds[p], copy, sign=-1, test_size=test_size)["robust"]
            assert cross[g, p] == pytest.approx(np.nan if expected is None else expected, abs=1e-12, nan_ok=True)
