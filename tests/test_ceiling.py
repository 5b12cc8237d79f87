"""The full-size gap noise ceiling: its pieces against independent computations, and its bias in a small
simulation whose truth is known (against the split-half ceiling's)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from benchmark.scores import ceiling as C
from benchmark.scores.simulation import (
    Design, LatentPopulation, grid_codes, latent_error_covariance, nested_zoo, simulate_task, synthetic_zoo,
    true_ceiling,
)
from benchmark.scores.scoring import TaskArrays, conditional_mutual_information


def test_joint_resamples_share_their_samples_across_models():
    """Each resample's counts are the bincount of one row of drawn indices, and every model's resampled
    accuracy is its mean correctness over exactly those drawn samples."""
    rng = np.random.default_rng(4)
    correct = rng.random((5, 37)) < 0.7
    counts = C.joint_bootstrap_counts(37, 6, np.random.default_rng(9))
    draws = np.random.default_rng(9).integers(0, 37, size=(6, 37))
    assert (counts.sum(axis=1) == 37).all()
    acc = C.resampled_accuracies(correct, counts)
    for b in range(6):
        assert (counts[b] == np.bincount(draws[b], minlength=37)).all()
        for m in range(5):
            assert acc[b, m] == pytest.approx(sum(bool(correct[m, i]) for i in draws[b]) / 37, abs=1e-12)


def test_reliability_and_shrinkage_by_hand():
    """gaps 0.1, 0.2, 0.3 (spread 0.02 about 0.2); noise covariance trace 0.006, total 0.007: noise spread
    0.006 - 0.007/3 = 0.0036667, reliability 1 - 0.0036667/0.02 = 0.8166667; the sqrt shrink moves the
    outer gaps to 0.2 -+ 0.1 sqrt(0.8166667) = 0.2 -+ 0.0903696."""
    gaps = np.array([0.1, 0.2, 0.3])
    noise = np.array([[0.001, 0.0005, 0.0], [0.0005, 0.002, 0.0], [0.0, 0.0, 0.003]])
    assert C.reliability(gaps, noise) == pytest.approx(0.8166667, abs=1e-7)
    shrunk, r = C.shrink_gaps(gaps, noise)
    assert shrunk == pytest.approx([0.1096304, 0.2, 0.2903696], abs=1e-7)
    posterior, _ = C.shrink_gaps(gaps, noise, power=1.0)
    assert posterior == pytest.approx([0.2 - 0.08166667, 0.2, 0.2 + 0.08166667], abs=1e-7)
    assert C.reliability(gaps, noise * 100) == 0.0  # noise larger than the spread: no signal


def test_noise_covariance_matches_the_spread_of_resampled_accuracies():
    """The covariance of accuracies over many joint resamples is the per-sample covariance over n (the
    ddof-0 covariance; the estimator's ddof 1 differs by n/(n-1))."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal(400)
    correct = (z[None, :] + rng.standard_normal((3, 400))) > np.array([[-1.0], [-0.5], [0.0]])
    acc = C.resampled_accuracies(correct, C.joint_bootstrap_counts(400, 20000, rng))
    expected = np.cov(correct.astype(float), ddof=0) / 400
    assert np.cov(acc.T) == pytest.approx(expected, rel=0.06)
    assert C.accuracy_noise_covariance(correct) == pytest.approx(expected * 400 / 399, rel=1e-12)


def test_latent_covariance_matches_drawn_correctness():
    """The bivariate-normal covariance of two models' correctness against the phi of 200,000 drawn samples."""
    population = LatentPopulation(np.array([0.05, 0.2]), 0.7)
    correct = population.draw_correctness(200_000, np.random.default_rng(1)).astype(float)
    cov = latent_error_covariance(np.array([0.05, 0.2]), 0.7)
    assert correct.mean(axis=1) == pytest.approx([0.95, 0.8], abs=0.003)
    assert np.cov(correct, ddof=0) == pytest.approx(cov, rel=0.04)


def test_true_ceiling_matches_a_loop_of_the_official_scores():
    """The truth of a nested zoo, redone draw by draw with conditional_mutual_information and scipy."""
    rng = np.random.default_rng(2)
    names, codes, sizes = grid_codes((2, 2, 2))
    arrays = TaskArrays([f"model_{i}" for i in range(8)], np.zeros(8), names, codes, sizes)
    correct = rng.random((8, 60)) < np.linspace(0.5, 0.95, 8)[:, None]
    zoo = nested_zoo(arrays, np.ones(8), correct)
    got = true_ceiling(zoo, repeats=7, rng=5, chunk=3)
    draws = np.random.default_rng(5)
    truth = zoo.true_gaps
    cmis, taus = [], []
    for _ in range(7):
        measured = 1.0 - correct[:, draws.integers(0, 60, size=60)].mean(axis=1)
        target = TaskArrays(arrays.keys, measured, names, codes, sizes)
        cmis.append(conditional_mutual_information(dict(zip(arrays.keys, truth)), target).cmi)
        taus.append(kendalltau(truth, measured).statistic)
    assert got["cmi"] == pytest.approx(np.mean(cmis), abs=1e-12)
    assert got["kendall_tau"] == pytest.approx(np.mean(taus), abs=1e-12)


def test_synthetic_zoo_has_the_designed_shape_and_spread():
    zoo = synthetic_zoo(Design((3, 3, 3, 2, 2), 5000, "pgdl"), np.random.default_rng(0))
    gaps = zoo.true_gaps
    assert len(gaps) == 108 and len(set(zip(*(zoo.codes[n] for n in zoo.names)))) == 108
    assert np.std(np.log(gaps)) == pytest.approx(0.4, rel=1e-9)  # the spread's log sd, by construction
    assert np.exp(np.log(gaps).mean()) == pytest.approx(0.15, rel=1e-9)


def test_latent_fallback_agrees_with_the_data_based_estimate_on_a_latent_zoo():
    """Where the latent model holds (a synthetic zoo), the fallback from accuracies alone is within a few
    points of the shrunk bootstrap from the per-sample correctness."""
    task = simulate_task(Design((2,) * 5, 2000), 3)
    full = C.shrunk_bootstrap(task.measured, task.train_acc, task.correct, 400, 0)
    fallback = C.latent_ceiling(task.measured, task.train_acc, task.correct.mean(axis=1), 2000, 400, 0)
    assert fallback["cmi"] == pytest.approx(full["cmi"], abs=0.04)
    assert 0 < fallback["reliability"] <= 1


def test_interval_holds_the_estimate_and_is_symmetric():
    task = simulate_task(Design((2,) * 5, 797), 1)
    out = C.ceiling(task.measured, task.train_acc, task.correct, 200, 0, interval=True, outer=30, inner=5)
    lo, hi = out["cmi_interval"]
    assert lo < out["cmi"] < hi and (out["cmi"] - lo) == pytest.approx(hi - out["cmi"])
    assert out["cmi_sd"] == pytest.approx((hi - lo) / (2 * 1.96))


def test_shrunk_bootstrap_is_nearly_unbiased_where_split_half_is_not():
    """Twelve digits-like zoos (32 models, 797 test samples): the true ceiling by Monte Carlo over test
    sets, against each estimator on one measured test set. Measured (docs/ceiling.md): shrunk bootstrap
    about +1 CMI point (x100), split-half about -21."""
    errors = {"shrunk": [], "split": []}
    for r in range(12):
        rng = np.random.default_rng(500 + r)
        zoo = synthetic_zoo(Design((2,) * 5, 797), rng)
        correct = zoo.draw_correctness(rng)
        measured = zoo.measure(correct)
        truth = true_ceiling(zoo, 60, rng)["cmi"]
        errors["shrunk"].append(C.shrunk_bootstrap(measured, zoo.train_acc, correct, 150, r)["cmi"] - truth)
        errors["split"].append(C.split_half(measured, zoo.train_acc, correct, 60, r)["cmi"] - truth)
    shrunk, split = np.mean(errors["shrunk"]) * 100, np.mean(errors["split"]) * 100
    assert abs(shrunk) < 4.0
    assert split < -10.0
    assert abs(shrunk) < 0.3 * abs(split)
