"""Repeats by need (measures.repeats_rule): the sequential rule by hand, and by simulation where the spread is known."""

import math

import numpy as np
import pytest
from scipy import stats

from measures.repeats_rule import RepeatsRule, run_repeats, simulate


def test_se_upper_by_hand():
    rule = RepeatsRule(target_se=0.01, k_min=2, k_max=6, confidence=0.9)
    scores = [0.10, 0.12, 0.11]
    s = 0.01  # sample sd of 0.10, 0.12, 0.11
    bound = s * math.sqrt(2 / stats.chi2.ppf(0.1, 2)) / math.sqrt(3)  # chi2.ppf(0.1, 2) = -2 ln 0.9
    assert bound == pytest.approx(s * math.sqrt(2 / (-2 * math.log(0.9))) / math.sqrt(3))
    assert rule.se_upper(scores) == pytest.approx(bound)
    assert rule.needs_another(scores) == (bound > 0.01)  # 0.0178 > 0.01: another
    assert rule.needs_another([0.1])  # fewer than k_min
    assert not rule.needs_another([0.0, 1.0] * 3)  # the cap
    assert not rule.needs_another([0.1, 0.1])  # no spread: stop at k_min
    assert rule.stopping_count([0.1, 0.1, 5.0]) == 2 and rule.stopping_count([0.0, 1.0]) is None


def test_run_repeats_stops_where_the_rule_does():
    rule = RepeatsRule(target_se=0.01, k_min=2, k_max=8)
    seen = []

    def score(k):
        seen.append(k)
        return [0.30, 0.10, 0.20, 0.20, 0.20, 0.20, 0.20, 0.20][k]

    scores = run_repeats(score, rule)
    assert seen == list(range(len(scores))) and len(scores) == rule.stopping_count(scores)
    assert len(scores) == 8  # one early disagreement keeps s large: the cap


def test_projected_count_inverts_the_bound():
    rule = RepeatsRule(target_se=0.01, k_min=2, k_max=10, confidence=0.9)
    assert rule.projected_count(0.0) == 2
    assert rule.projected_count(1.0) == 10  # far above the target: the cap
    for sd in (0.005, 0.01, 0.02):
        k = rule.projected_count(sd)
        assert rule.se_upper([sd * z for z in _exact_sd_one(k)]) <= 0.01 + 1e-12
        if k > rule.k_min:
            assert rule.se_upper([sd * z for z in _exact_sd_one(k - 1)]) > 0.01


def _exact_sd_one(k):
    z = np.arange(k, dtype=float)
    return (z - z.mean()) / z.std(ddof=1)  # k values of sample sd exactly 1


def test_simulation_stops_early_for_low_spread_and_goes_to_the_cap_for_high_spread():
    rule = RepeatsRule(target_se=0.01, k_min=2, k_max=10)
    low = simulate(0.001, rule, runs=3000, seed=1)  # sigma a tenth of the target
    high = simulate(0.1, rule, runs=3000, seed=2)  # ten times the target

    def p_stop_at_2(ratio):
        # k = 2: s = sigma |Z|, and the rule stops iff s sqrt(1 / chi2.ppf(0.1, 1)) / sqrt(2) <= target
        return 2 * stats.norm.cdf(math.sqrt(2 * stats.chi2.ppf(0.1, 1)) / ratio) - 1

    assert p_stop_at_2(0.1) == pytest.approx(0.924, abs=0.002)
    for r, ratio in ((low, 0.1), (high, 10)):
        p = p_stop_at_2(ratio)
        assert r["stop_at_k_min"] == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 3000))
    assert low["mean_repeats"] < 2.2 and low["reach_k_max"] == 0
    assert high["reach_k_max"] > 0.96 and high["mean_repeats"] > 9.6
    for r in (low, high):  # the mean at stopping is unbiased; the interval covers about as stated
        assert abs(r["bias"]) < 4 * r["bias_se"]
        assert 0.9 < r["coverage_95"] < 0.97


def test_bad_rules_are_refused():
    with pytest.raises(ValueError, match="target_se"):
        RepeatsRule(target_se=0)
    with pytest.raises(ValueError, match="k_min"):
        RepeatsRule(k_min=1)
    with pytest.raises(ValueError, match="k_max"):
        RepeatsRule(k_min=3, k_max=2)
    with pytest.raises(ValueError, match="finite"):
        RepeatsRule().se_upper([0.1, float("nan")])
