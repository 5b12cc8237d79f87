"""Intervals of a measure's scores that combine its own randomness and the noise of the measured gaps.

A score (CMI, Kendall's tau, psi, robust sign-error) of a measure on a task is estimated by the mean over
its K repeats of the score against the gaps measured on the task's finite test set:
theta_hat = mean_k s(pred_k, gaps). Two things make it random: the measure (its seeds: the repeats) and
the test set the gaps were measured on. The bootstrap replicate b combines both:

* the gaps of joint test resample b (``resampling``: the same resampled test indices for every model and
  every measure of the task), and
* a repeat r_b drawn uniformly (seeded by the task and K, so measures with K repeats share the draws):

      theta*_b = sbar_b + (s(pred_{r_b}, gaps_b) - sbar_b) / sqrt(K - 1),   sbar_b = mean_k s(pred_k, gaps_b)

  (K = 1: theta*_b = s(pred, gaps_b)). The rescaled residual has variance sigma^2 / K, the variance of a
  mean over K repeats (a plain pick of r_b would give a single repeat's sigma^2; the mean over K repeats
  drawn with replacement, (K - 1) / K of it: a third short with K = 3).

The interval is the CENTRED bootstrap interval [theta_hat - (q*_{0.975} - mean*), theta_hat - (q*_{0.025} -
mean*)] (``VERDICT_INTERVAL_METHOD``; the replicates' spread about their own mean, reflected about the
estimate), clipped to the score's range. Its estimand is the expected score against gaps measured on a
test set of the task's size: noise in the gaps scrambles their order, so every score against measured gaps
is attenuated towards "no relation" compared with the score against the (unobservable) true gaps, and by
a lot on the shipped zoos, whose gap noise is comparable to the gaps' spread. A test-set bootstrap
cannot undo that attenuation: the attenuation is strongly non-linear in the noise, so the bootstrap's
extra noise moves the replicates by much less than the first dose moved the estimate; the BASIC interval
(``method="basic"``, [2 theta_hat - q*_hi, 2 theta_hat - q*_lo]), which adds that move back as a bias
correction, covers neither estimand (docs/verdict_statistics.md, ``python -m scripts.simulate_intervals``).
BCa would need a jackknife over the test samples per measure, a studentized interval a nested bootstrap,
for replicates that are discrete and skewed; the centred interval's coverage is checked by simulation.
The noise ceilings (``noise_ceiling``) say how far the attenuation goes on a task.

A deterministic measure (K = 1) thus gets a non-zero-width interval from the gap noise alone. A task
without per-sample correctness (the PGDL tasks) has no gap resamples: there only the repeats vary
(``t_interval``, the Student t over repeats, ``INTERVAL_METHOD``). Variation over training seeds, where
replicate zoos exist, is reported separately by ``training_seed_interval`` (a Student t over the
replicates' scores): it is a different question (another zoo trained the same way) than the noise of this
zoo's measured gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .cmi import cmi_batch
from .kendall import granulated_kendall_batch, kendall_tau_batch
from .resampling import task_seed
from .robust import robust_batch

LEVEL = 0.95
ALPHA = 0.05
INTERVAL_METHOD = "Student t over repeats (mean +- t_{0.975,K-1} s/sqrt(K)); a deterministic measure's is its value"
VERDICT_INTERVAL_METHOD = ("centred bootstrap 95% (estimate - (97.5th/2.5th percentile - mean) of 1000 joint test-set "
                           "resamples of the gaps x drawn repeats): the expected score at this test-set size")
SCORES = ("cmi", "kendall_tau", "psi", "robust_sign_error")
RANGES = {"cmi": (0.0, 1.0000000000032), "kendall_tau": (-1.0, 1.0), "psi": (-1.0, 1.0), "robust_sign_error": (0.0, 1.0)}


# -- the Student t over repeats (tasks without gap resamples) --------------------------------------


def t_interval(values, exact: bool = False, level: float = LEVEL) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of ``values`` (one per repeat), the interval Student-t at ``level``.

    ``exact``: the values come from a deterministic measure, so the interval is the value itself.
    A stochastic measure with a single repeat has no interval (None, None). NaN values give NaN.
    """
    from scipy.stats import t

    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean()) if len(v) else float("nan")
    if exact or (len(v) > 1 and np.all(v == v[0])):
        return mean, mean, mean
    if len(v) < 2:
        return mean, None, None
    half = float(t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, mean - half, mean + half


def training_seed_interval(per_replicate, level: float = LEVEL) -> dict:
    """Training-seed variation of a score over the members of a replicate set (one value per replicate):
    ``{"mean", "sd", "low", "high", "replicates"}``, low/high the Student-t interval of the mean (None with
    fewer than two finite values)."""
    finite = np.array([v for v in per_replicate if v is not None and not math.isnan(v)], dtype=np.float64)
    if len(finite) == 0:
        return {"mean": None, "sd": None, "low": None, "high": None, "replicates": 0}
    mean, low, high = t_interval(finite, level=level)
    return {"mean": mean, "sd": float(finite.std(ddof=1)) if len(finite) > 1 else None,
            "low": low, "high": high, "replicates": int(len(finite))}


# -- scores of many (repeat, resample) rows ---------------------------------------------------------


def score_rows(preds, gaps, arrays, sign: int = 1, scores=SCORES, test_size: int | None = None) -> dict[str, np.ndarray]:
    """Every score of every repeat against every gap row: ``{score: (G, K)}`` for ``preds`` (K, N) and
    ``gaps`` (G, N) or (N,). ``sign`` orients the robust sign-error (``scoring.evaluate``'s)."""
    out = {}
    if "cmi" in scores:
        out["cmi"] = cmi_batch(preds, gaps, arrays, cross=True).cmi
    if "kendall_tau" in scores:
        out["kendall_tau"] = kendall_tau_batch(preds, gaps, cross=True)
    if "psi" in scores:
        out["psi"] = granulated_kendall_batch(preds, gaps, arrays, cross=True)["psi"]
    if "robust_sign_error" in scores:
        out["robust_sign_error"] = robust_batch(preds, gaps, arrays, sign, test_size, cross=True)
    return out


def score_pairs(preds, gaps, arrays, sign: int = 1, scores=SCORES, test_size: int | None = None) -> dict[str, np.ndarray]:
    """Every score of row r of ``preds`` against row r of ``gaps`` (numpy broadcasting of rows): {score: (R,)}."""
    out = {}
    if "cmi" in scores:
        out["cmi"] = cmi_batch(preds, gaps, arrays).cmi
    if "kendall_tau" in scores:
        out["kendall_tau"] = kendall_tau_batch(preds, gaps)
    if "psi" in scores:
        out["psi"] = granulated_kendall_batch(preds, gaps, arrays)["psi"]
    if "robust_sign_error" in scores:
        out["robust_sign_error"] = robust_batch(preds, gaps, arrays, sign, test_size)
    return out


def repeat_draws(repeats: int, resamples: int, *identity: str) -> np.ndarray:
    """(resamples,) repeat indices, seeded by the task's identity and K: measures with K repeats share them."""
    rng = np.random.default_rng(task_seed("repeat-draws", str(repeats), *identity))
    return rng.integers(0, repeats, size=resamples)


def combine_repeats(per_row: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """theta*_b (B,) from the scores (B, K) of every repeat on every resample and the drawn repeats (B,)."""
    b, k = per_row.shape
    picked = per_row[np.arange(b), draws]
    if k == 1:
        return picked
    mean = per_row.mean(axis=1)
    return mean + (picked - mean) / math.sqrt(k - 1)


@dataclass
class ScoreDraws:
    """One measure on one task: ``point[score]`` (the mean over repeats against the measured gaps),
    ``draws[score]`` (B,) the bootstrap replicates theta*_b, ``per_repeat[score]`` (K,) the repeats'
    scores against the measured gaps. With no gap resamples the B replicates vary the repeats only."""

    point: dict[str, float]
    draws: dict[str, np.ndarray]
    per_repeat: dict[str, np.ndarray]
    repeats: int
    gap_resampled: bool
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)


def score_draws(preds, arrays, gap_resamples=None, identity: tuple[str, ...] = (), sign: int = 1,
                resamples: int | None = None, scores=SCORES, level: float = LEVEL, method: str = "centred") -> ScoreDraws:
    """``ScoreDraws`` of a measure's repeats ``preds`` (K, N) on a task, with its intervals (``method``).

    ``gap_resamples`` (B, N): the task's joint gap resamples (``resampling``), the same array for every
    measure of the task; None where the task has none (then ``resamples`` replicates of the repeats
    alone). ``identity`` seeds the repeat draws (the task's identity, as for the gap resamples).
    """
    preds = np.atleast_2d(np.asarray(preds, dtype=np.float64))
    k = len(preds)
    measured = score_rows(preds, arrays.gaps, arrays, sign, scores)
    point = {s: float(np.mean(v)) if not np.isnan(v).any() else float("nan") for s, v in measured.items()}
    if gap_resamples is not None:
        per_row = score_rows(preds, gap_resamples, arrays, sign, scores)
        b = len(gap_resamples)
    else:
        b = resamples or 1000
        per_row = {s: np.broadcast_to(v, (b, k)) for s, v in measured.items()}
    draws = repeat_draws(k, b, *identity)
    out = ScoreDraws(point, {s: combine_repeats(v, draws) for s, v in per_row.items()},
                     {s: v[0] for s, v in measured.items()}, k, gap_resamples is not None)
    out.intervals = {s: bootstrap_interval(out.point[s], out.draws[s], level, RANGES.get(s), method) for s in out.point}
    return out


def bootstrap_interval(point: float, draws: np.ndarray, level: float = LEVEL, bounds: tuple[float, float] | None = None,
                       method: str = "centred") -> tuple[float, float] | None:
    """The interval of a score from its estimate and bootstrap replicates (NaN replicates left out), clipped
    to ``bounds``; None where undefined.

    ``"centred"`` (the default): the replicates' spread about their own mean, reflected about the estimate,
    [point - (q_hi - mean*), point - (q_lo - mean*)]: an interval for the expected score at the task's
    test-set size. ``"basic"``: [2 point - q_hi, 2 point - q_lo], which also moves it by the estimated bias
    point - mean* (the bootstrap's estimate of the gap noise's effect)."""
    finite = draws[~np.isnan(draws)]
    if math.isnan(point) or len(finite) == 0:
        return None
    q_lo, q_hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    centre = 2 * point if method == "basic" else point + float(finite.mean())
    if method not in ("basic", "centred"):
        raise ValueError(f"unknown interval method {method!r} (basic or centred)")
    low, high = centre - q_hi, centre - q_lo
    if bounds is not None:
        low, high = min(max(low, bounds[0]), bounds[1]), min(max(high, bounds[0]), bounds[1])
    return float(low), float(high)
