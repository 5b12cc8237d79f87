"""A tiny run of the power analysis (scripts/power_analysis.py): properties that must hold."""

import numpy as np
from scipy.stats import norm

from benchmark.scores.simulation import Design
from scripts import power_analysis as P


def test_cmi_sd_shrinks_with_more_models_at_fixed_spread():
    noise = np.array([0.5, 2.3])
    sds = []
    for sizes in ((2,) * 5, (3,) * 5):
        sim = P.simulate(Design(sizes, 2000, "digits"), noise, reps=24, seed=[7, len(sizes)], keep=False)
        sds.append(P.measure_cmis(sim).std(axis=0, ddof=1))
    small, large = sds
    assert np.all(large < 0.75 * small), (small, large)


def test_calibrated_noise_meets_the_targets_on_fresh_zoos():
    noise = P.calibrate(reps=60, seed=3)
    assert noise["good"] < noise["runner-up"] < noise["median"]
    sim = P.simulate(P.REFERENCE, np.array([noise["good"], noise["median"]]), reps=60, seed=[11], keep=False)
    good, median = P.measure_cmis(sim).mean(axis=0)
    assert abs(good - P.TARGETS["good"]) < 4 and abs(median - P.TARGETS["median"]) < 2.5, (good, median)


def test_paired_power_uses_the_bonferroni_threshold():
    critical = norm.isf(0.01 / 39 / 2)  # two-sided p < 0.01 / 39
    z = np.array([[critical + 0.01], [critical - 0.01], [-10.0], [np.nan]])
    assert P.paired_power(z)[0] == 0.25


def test_bootstrap_separates_a_perfect_measure_from_pure_noise():
    design = Design((3, 3, 2, 2, 2), 3000, "digits")
    sim = P.simulate(design, np.array([0.0, 50.0]), reps=3, seed=[5])
    boot = P.bootstrap(sim, 30, np.random.default_rng(0))
    assert np.all(boot["z"][:, 0] > 5) and np.all(boot["ci_width"] > 0)


def test_stouffer_combines_blocks_of_zoos():
    z = np.array([[1.0], [1.0], [1.0], [1.0], [3.0], [np.nan], [1.0], [0.0], [9.0]])
    combined = P.stouffer(z, 4)  # the ninth zoo is left over; NaN counts as no evidence
    np.testing.assert_allclose(combined[:, 0], [4 / 2, 4 / 2])
