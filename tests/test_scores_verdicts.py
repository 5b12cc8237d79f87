"""Joint gap resamples, the verdict intervals, Holm, the paired test and the confidence set of the best."""

from __future__ import annotations

import numpy as np
import pytest

from scripts.perf.synthetic import correlated_correctness, synthetic_task
from benchmark.scores.comparisons import (
    Estimate,
    average_estimates,
    best_set,
    compare_with_best,
    estimate,
    holm,
    paired_difference,
    paired_test,
)
from benchmark.scores.intervals import bootstrap_interval, combine_repeats, score_draws, score_rows, t_interval
from benchmark.scores.resampling import joint_gap_resamples, multiplicities, task_seed
from benchmark.scores.scoring import TaskArrays, conditional_mutual_information
from scripts import simulate_intervals


def test_resamples_are_joint_across_models_and_seeded_by_the_task():
    rng = np.random.default_rng(0)
    correct = rng.random((5, 40)) < 0.8
    correct[3] = correct[1]  # two models with the same per-sample correctness
    train = rng.uniform(0.9, 1.0, 5)
    r = joint_gap_resamples(correct, train, resamples=50, seed=task_seed("zoo-a"))
    assert r.test_weights.sum(axis=1).tolist() == [40] * 50
    # every model's gap on resample b is its accuracy on the SAME resampled samples
    for b in (0, 17, 49):
        index = np.repeat(np.arange(40), r.test_weights[b].astype(int))
        assert r.gaps[b] == pytest.approx(train - correct[:, index].mean(axis=1), abs=1e-15)
    # identical correctness rows keep identical test accuracies on every resample: the draws are shared
    assert np.array_equal(train[3] - r.gaps[:, 3], train[1] - r.gaps[:, 1])
    again = joint_gap_resamples(correct, train, resamples=50, seed=task_seed("zoo-a"))
    assert np.array_equal(again.gaps, r.gaps)  # common random numbers for every measure of the task
    other = joint_gap_resamples(correct, train, resamples=50, seed=task_seed("zoo-b"))
    assert not np.array_equal(other.gaps, r.gaps)
    trained = joint_gap_resamples(correct, train_correct=correct, resamples=5, seed=1, resample_train=True)
    assert trained.train_weights.shape == (5, 40)
    with pytest.raises(ValueError, match="needs the per-sample train correctness"):
        joint_gap_resamples(correct, train, resample_train=True)
    counts = multiplicities(7, 2000, np.random.default_rng(3))
    assert counts.mean() == pytest.approx(1.0) and counts.var() == pytest.approx(6 / 7, abs=0.03)  # multinomial(7, 1/7)


def test_score_rows_are_the_official_scores_of_every_repeat_and_resample():
    arrays, _ = synthetic_task({"a": 2, "b": 2, "c": 3}, seed=1, tie_levels=8)
    rng = np.random.default_rng(2)
    preds, gaps = rng.normal(size=(3, 12)), rng.normal(size=(4, 12))
    rows = score_rows(preds, gaps, arrays)
    for g in range(4):
        copy = TaskArrays(keys=arrays.keys, gaps=gaps[g], names=arrays.names, codes=arrays.codes, sizes=arrays.sizes)
        for k in range(3):
            assert rows["cmi"][g, k] == pytest.approx(
                conditional_mutual_information(dict(zip(arrays.keys, preds[k])), copy).cmi, abs=1e-12)


def test_combine_repeats_has_the_variance_of_a_mean_over_repeats():
    rng = np.random.default_rng(4)
    scores = np.tile([1.0, 2.0, 6.0], (200000, 1))  # three repeats' scores (sample variance 7), no gap noise
    draws = rng.integers(0, 3, 200000)
    combined = combine_repeats(scores, draws)
    assert combined.mean() == pytest.approx(3.0, abs=0.02)
    assert combined.var() == pytest.approx(7 / 3, rel=0.02)  # s^2 / K, the mean's; one repeat's would be 7
    assert np.array_equal(combine_repeats(scores[:, :1], draws * 0), scores[:, 0])


def test_deterministic_measure_gets_a_nonzero_interval_from_gap_noise():
    rng = np.random.default_rng(5)
    arrays, _ = synthetic_task({"a": 2, "b": 2, "c": 2, "d": 2}, seed=3)
    error = 0.05 + 0.1 * arrays.gaps
    correct = correlated_correctness(error, 400, 0.6, rng)
    arrays.gaps = 1.0 - correct.mean(axis=1)
    gaps = joint_gap_resamples(correct, np.ones(16), resamples=300, seed=task_seed("t")).gaps
    d = score_draws(arrays.gaps[None] + rng.normal(0, 0.01, (1, 16)), arrays, gaps, ("t",))
    for score in ("cmi", "kendall_tau", "psi", "robust_sign_error"):
        low, high = d.intervals[score]
        assert high > low
    fixed = score_draws(arrays.gaps[None], arrays, None, ("t",))  # no gap resamples: a deterministic measure's value
    assert fixed.intervals["cmi"] == pytest.approx((fixed.point["cmi"], fixed.point["cmi"]))


def test_bootstrap_interval_by_hand():
    draws = np.arange(1, 100, dtype=float)  # quantiles 2.5% and 97.5% are 3.45 and 96.55, mean 50
    assert bootstrap_interval(10.0, draws, method="basic") == pytest.approx((20 - 96.55, 20 - 3.45))
    assert bootstrap_interval(10.0, draws) == pytest.approx((60 - 96.55, 60 - 3.45))
    assert bootstrap_interval(10.0, draws, bounds=(0, 50)) == pytest.approx((0.0, 50.0))
    assert t_interval([1.0, 2.0, 3.0])[1] == pytest.approx(2 - 4.302652729911275 / np.sqrt(3))


def test_holm_by_hand():
    # sorted p: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06, max with 0.06), 0.5 (x1 = 0.5)
    assert holm({"a": 0.03, "b": 0.01, "c": 0.5, "d": 0.02}) == pytest.approx({"a": 0.06, "b": 0.04, "c": 0.5, "d": 0.06})
    assert holm({"x": 0.4, "y": 0.6}) == pytest.approx({"x": 0.8, "y": 0.8})  # monotone: 0.6 x 1 < 0.8


def test_paired_difference_by_hand_and_the_comparison_with_the_best():
    b = np.linspace(-1, 1, 999)
    same = paired_difference(Estimate(0.5, 0.5 + b), Estimate(0.5, 0.5 + b))
    assert same["p_value"] == 1.0 and same["difference"] == 0.0
    # T* = d* - mean(d*) is uniform on [-0.2, 0.2]; d_hat = 0.19: #{T* >= 0.19} = 25 of 999
    shifted = paired_difference(Estimate(0.69, 0.5 + 0.2 * b), Estimate(0.5, np.zeros(999)))
    assert shifted["p_value"] == pytest.approx(2 * 26 / 1000)
    result = compare_with_best({"good": Estimate(0.9, 0.9 + 0.01 * b), "bad": Estimate(0.1, 0.1 + 0.01 * b[::-1]),
                                "close": Estimate(0.899, 0.899 + 0.01 * b[::-1])})
    assert result["good"].best == "good" and result["good"].tied
    assert not result["bad"].tied and result["bad"].p_raw == pytest.approx(2 / 1000)
    assert result["bad"].p_value == pytest.approx(4 / 1000)  # Holm: the smaller of 2 p-values times 2
    assert result["close"].p_value == pytest.approx(result["close"].p_raw)  # the larger times 1
    assert result["close"].tied and result["close"].in_best_set and not result["bad"].in_best_set


def test_paired_test_marks_ties_and_real_differences():
    arrays, _ = synthetic_task({"a": 2, "b": 2, "c": 2, "d": 2, "e": 2, "f": 2}, seed=7)
    rng = np.random.default_rng(2)
    noise = rng.random((3, len(arrays.keys)))
    preds = {"perfect": np.stack([arrays.gaps] * 3), "perfect_cubed": (arrays.gaps ** 3)[None], "noise": noise}
    result = paired_test({"t": (arrays, preds)})
    best = result["noise"].best
    other = "perfect_cubed" if best == "perfect" else "perfect"
    assert result[other].tied and result[other].p_value == 1.0 and result[other].difference == 0.0
    assert not result["noise"].tied and result["noise"].p_value < 0.05
    official = [conditional_mutual_information(dict(zip(arrays.keys, p)), arrays).cmi for p in noise]
    assert result["noise"].difference == pytest.approx(1 - np.mean(official))
    assert paired_test({"t": (arrays, preds)})["noise"].p_value == result["noise"].p_value  # seeded


def test_average_estimates_over_tasks_and_replicate_zoos():
    a = {"m": Estimate(0.2, np.full(4, 0.2)), "n": Estimate(0.1, np.array([0.0, 0.1, 0.2, 0.3]))}
    b = {"m": Estimate(0.4, np.full(4, 0.6)), "n": Estimate(0.3, np.array([0.3, 0.3, 0.3, 0.3]))}
    mean = average_estimates([a, b])
    assert mean["m"].point == pytest.approx(0.3) and mean["m"].draws == pytest.approx([0.4] * 4)
    assert mean["n"].draws == pytest.approx([0.15, 0.2, 0.25, 0.3])
    drawn = average_estimates([a, b], resample_members=True, identity=("set",))
    assert set(np.round(drawn["m"].draws, 12)) <= {0.2, 0.4, 0.6}  # whole members drawn with replacement


def test_small_simulation_covers_and_the_best_set_contains_the_true_best():
    """A small run of scripts.simulate_intervals (docs/verdict_statistics.md has the full one): the centred
    CMI interval covers the expected score at the zoo's test-set size in a loose band, and the confidence
    set of the best contains the true best."""
    measures = {k: simulate_intervals.MEASURES[k] for k in ("det_weak", "stoch_a", "stoch_c", "stoch_d")}
    result = simulate_intervals.simulate(16, 150, seed=1, scores=("cmi",), measures=measures)
    coverage = np.mean([result["table"][(m, "cmi")]["centred_expected"] for m in measures])
    assert 0.8 <= coverage <= 1.0
    assert result["best_set_coverage"] >= 0.85
    chosen = best_set({"x": estimate(type("D", (), {"point": {"cmi": 0.5}, "draws": {"cmi": np.full(9, 0.5)}})())})
    assert chosen == {"x"}
