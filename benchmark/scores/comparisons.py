"""Paired comparisons of measures: which one predicts generalization better, corrected for multiplicity.

Every estimate here is an ``Estimate``: a point value and its B bootstrap replicates theta*_b
(``intervals.score_draws``), where replicate b of every measure of a task used the same joint test
resample of the gaps and, for measures with the same number of repeats, the same drawn repeat: the
difference of two measures, d*_b = theta*_b(A) - theta*_b(B), is paired on both.

* ``paired_difference``: the difference d_hat = theta_hat(A) - theta_hat(B), its centred bootstrap interval
  [d_hat - q_{1-a/2}(T*), d_hat - q_{a/2}(T*)] with T*_b = d*_b - mean(d*), and the two-sided p of that
  interval's inversion, p = min(1, 2 min(#{T* >= d_hat} + 1, #{T* <= d_hat} + 1) / (B + 1)): the null
  distribution is the bootstrap distribution centred at 0, not the raw percentile of d* at 0.
* ``holm``: Holm's step-down adjustment of a family of p-values (controls the family-wise error).
* ``compare_with_best``: every measure against the one with the best point estimate; the family of those
  m - 1 tests is Holm-adjusted, and "tied" means not separated after the correction.
* ``best_set``: a confidence set for the best measure, which takes care of the best having been picked on
  the same data: measure m is left out only if some j beats it, by the one-sided centred test of
  theta_j > theta_m (p = (#{T*_b >= d_hat} + 1) / (B + 1)), Holm-adjusted over all ordered pairs. The
  truly best measure is left out only by a false rejection, so it is in the set with probability >= 95%.
* ``average_estimates``: the mean over tasks (the suite-level task-averaged score): the points' mean and
  the replicates' mean, each task's test set resampled independently (each task's resamples are seeded by
  its own identity); with ``resample_members`` the members (the replicate zoos of a replicate set: whole
  zoos trained with other seeds) are themselves drawn with replacement, the same draw for every measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .intervals import ALPHA, score_draws
from .resampling import task_seed

TEST_METHOD = ("paired centred bootstrap over joint test resamples and drawn repeats (the same draws for every measure "
               "of a task); Holm-adjusted p against the best; tied = not separated after Holm")
LOWER_IS_BETTER = {"robust_sign_error"}


@dataclass
class Estimate:
    point: float
    draws: np.ndarray  # (B,)


def estimate(draws, score: str = "cmi") -> Estimate:
    """The ``Estimate`` of one score from an ``intervals.ScoreDraws``."""
    return Estimate(draws.point[score], np.asarray(draws.draws[score], dtype=np.float64))


def _differences(a: Estimate, b: Estimate) -> tuple[float, np.ndarray]:
    """d_hat and the replicates' deviations T*_b = d*_b - mean(d*) (NaN replicates left out)."""
    d = a.draws - b.draws
    d = d[~np.isnan(d)]
    return a.point - b.point, d - d.mean() if len(d) else d


def paired_difference(a: Estimate, b: Estimate, alpha: float = ALPHA) -> dict:
    """``{"difference", "interval", "p_value"}`` of theta(a) - theta(b), paired on the replicates: the
    centred interval [d_hat - q*_{1-a/2}, d_hat - q*_{a/2}] of T* = d* - mean(d*), and the two-sided
    p = min(1, 2 min(#{T* >= d_hat} + 1, #{T* <= d_hat} + 1) / (B + 1))."""
    d_hat, t = _differences(a, b)
    if math.isnan(d_hat) or len(t) == 0:
        return {"difference": float("nan"), "interval": (float("nan"), float("nan")), "p_value": float("nan")}
    q_lo, q_hi = np.quantile(t, [alpha / 2, 1 - alpha / 2])
    above, below = np.sum(t >= d_hat), np.sum(t <= d_hat)
    p = float(min(1.0, 2 * (min(above, below) + 1) / (len(t) + 1)))
    return {"difference": float(d_hat), "interval": (float(d_hat - q_hi), float(d_hat - q_lo)), "p_value": p}


def one_sided_p(a: Estimate, b: Estimate) -> float:
    """p of the one-sided centred test of theta(a) > theta(b): (#{T* >= d_hat} + 1) / (B + 1)."""
    d_hat, t = _differences(a, b)
    if math.isnan(d_hat) or len(t) == 0:
        return 1.0
    return float((np.sum(t >= d_hat) + 1) / (len(t) + 1))


def holm(p_values: dict) -> dict:
    """Holm's step-down adjusted p-values: sorted ascending, adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))."""
    keys = sorted(p_values, key=lambda k: (p_values[k], str(k)))
    m = len(keys)
    out, running = {}, 0.0
    for rank, key in enumerate(keys):
        running = float(max(running, min(1.0, (m - rank) * p_values[key])))
        out[key] = running
    return out


def _better(score: str):
    sign = -1.0 if score in LOWER_IS_BETTER else 1.0
    return lambda e: Estimate(sign * e.point, sign * e.draws)


def best_set(estimates: dict[str, Estimate], score: str = "cmi", alpha: float = ALPHA) -> set[str]:
    """The confidence set (level 1 - alpha) of the measures that could be the best (module docstring)."""
    oriented = {m: _better(score)(e) for m, e in estimates.items() if not math.isnan(e.point)}
    pairs = {(j, m): one_sided_p(oriented[j], oriented[m]) for j in oriented for m in oriented if j != m}
    adjusted = holm(pairs) if pairs else {}
    beaten = {m for (j, m), p in adjusted.items() if p < alpha}
    return set(oriented) - beaten


@dataclass
class Comparison:
    best: str
    p_value: float  # Holm-adjusted over the comparisons with the best; 1.0 for the best itself
    p_raw: float  # the two-sided centred-bootstrap p before the correction
    difference: float  # best's score minus this one's (fraction)
    difference_interval: tuple[float, float]  # 95% centred bootstrap interval of the difference
    tied: bool  # not separated from the best after Holm
    in_best_set: bool  # in the 95% confidence set of the best measure

    def as_dict(self) -> dict:
        return {"best": self.best, "p_value": self.p_value, "p_raw": self.p_raw, "difference": self.difference,
                "difference_interval": list(self.difference_interval), "tied_with_best": self.tied,
                "in_best_set": self.in_best_set}


def compare_with_best(estimates: dict[str, Estimate], score: str = "cmi", alpha: float = ALPHA) -> dict[str, Comparison]:
    """Every measure against the best point estimate (ties in the point broken by name), Holm over the m - 1
    tests, and each measure's membership of the confidence set of the best (``best_set``)."""
    finite = {m: e for m, e in estimates.items() if not math.isnan(e.point)}
    if not finite:
        return {}
    orient = _better(score)
    best = min(finite, key=lambda m: (-orient(finite[m]).point, m))
    raw = {m: paired_difference(orient(finite[best]), orient(e), alpha) for m, e in finite.items() if m != best}
    adjusted = holm({m: r["p_value"] for m, r in raw.items()})
    contenders = best_set(finite, score, alpha)
    out = {best: Comparison(best, 1.0, 1.0, 0.0, (0.0, 0.0), True, True)}
    for m, r in raw.items():
        out[m] = Comparison(best, adjusted[m], r["p_value"], r["difference"], r["interval"], bool(adjusted[m] >= alpha),
                            m in contenders)
    return out


def average_estimates(members: list[dict[str, Estimate]], resample_members: bool = False,
                      identity: tuple[str, ...] = ()) -> dict[str, Estimate]:
    """The mean over tasks (or over the replicate zoos of a set) of each measure present in all of them.

    Each member's replicates come from its own independent test resamples; ``resample_members`` also draws
    the members with replacement in each replicate (multinomial weights seeded by ``identity``, the same
    for every measure), so that the spread includes the variation between whole replicate zoos.
    """
    if not members:
        return {}
    measures = set.intersection(*(set(m) for m in members))
    if not measures:
        return {}
    b = len(next(iter(members[0].values())).draws)
    k = len(members)
    if resample_members:
        rng = np.random.default_rng(task_seed("members", *identity))
        weights = rng.multinomial(k, np.full(k, 1.0 / k), size=b) / k  # (B, k)
    else:
        weights = np.full((b, k), 1.0 / k)
    out = {}
    for name in sorted(measures):
        points = np.array([m[name].point for m in members])
        draws = np.stack([m[name].draws for m in members], axis=1)  # (B, k)
        out[name] = Estimate(float(points.mean()), (draws * weights).sum(axis=1))
    return out


def paired_test(per_task: dict, resamples: int = 1000, alpha: float = ALPHA,
                gap_resamples: dict | None = None) -> dict[str, Comparison]:
    """Every measure against the best on the mean CMI over tasks.

    ``per_task``: task name -> (arrays, {measure: predictions (K_m, N), one row per repeat}); only the
    measures present on every task are compared. ``gap_resamples``: task name -> (B, N) joint gap
    resamples (``resampling``) where the task has them; a task without varies the repeats only.
    """
    tasks = sorted(per_task)
    measures = sorted(set.intersection(*(set(per_task[t][1]) for t in tasks))) if tasks else []
    members = []
    for t in tasks:
        arrays, preds = per_task[t]
        gaps = (gap_resamples or {}).get(t)
        members.append({m: estimate(score_draws(preds[m], arrays, gaps, (t,), resamples=resamples, scores=("cmi",)))
                        for m in measures})
    return compare_with_best(average_estimates(members), "cmi", alpha)
