"""Power analysis for the design of the default suite: how many models, test samples and how wide a gap
spread the benchmark needs to tell measures apart. The tables of docs/power_analysis.md.

``python -m scripts.power_analysis [--quick] [--reps R] [--resamples B] [--json FILE]``

Zoos are synthetic (``benchmark.scores.simulation``): a complete factorial grid, true log-normal gaps
(main effects, one interaction, model-level noise), per-sample test correctness from the
shared-difficulty latent (tetrachoric rho 0.72, as the digits zoos), and one measured test set.

Measures: a measure's score of model m is its standardized true log gap plus independent normal noise
of sd ``s`` (in units of the log-gap sd), a fresh draw per zoo (the measure's error on a model is a
property of the model, not of the test set). ``s`` is calibrated once, on the reference design
(2^5 = 32 models, 797 test samples, digits spread, like the shipped digits zoos), so that the mean
CMI x100 against the measured gaps is 24 ("good"), 20 ("runner-up") and 5 ("median"); the same ``s``
then serves every design, so a design changes how well a measure of fixed quality is seen.

Per design, over ``reps`` independent zoos (new true gaps, new test set, new measure noise: the spread
a new training seed and test draw give):

* ``sd``: the standard deviation of each measure's CMI x100 over zoos;
* ``ci``: the mean width of the 95% percentile interval of the good measure's CMI x100 from a joint
  test-sample bootstrap (``resamples`` resamples of the test indices, the same for every model and
  every measure: common random numbers); it holds test-set noise only, not the model-level variation;
* ``power``: the share of zoos on which a paired bootstrap test puts the good measure above the other
  (median, runner-up) at Bonferroni-corrected p < 0.01 over ``comparisons`` (39: the best of ~40
  measures against each other one): z = observed CMI difference / sd of the paired bootstrap
  differences (same resamples for both measures), two-sided normal p, and the difference positive;
  ``power ... 4 zoos``: the same test on a suite of 4 independent zoos of the design, the zoos' z
  combined by Stouffer's sum / sqrt(4) (the zoos taken four at a time: reps / 4 suites).

Seeded: zoo r of design d uses seed (SEED, d, r); the calibration uses its own seed stream.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from benchmark.noise_ceiling import agreement_rows
from benchmark.scores.ceiling import ROW_BUDGET, joint_bootstrap_counts, resampled_accuracies
from benchmark.scores.simulation import SPREADS, Design, synthetic_zoo

# A third spread between the digits zoos and PGDL: the digits geometric mean doubled, the same log sd,
# so every gap (and the gap sd, 0.018 -> 0.036) is twice the digits one.
SPREADS.setdefault("digits-2x", {**SPREADS["digits"], "gap_geomean": 2 * SPREADS["digits"]["gap_geomean"]})

SEED = 20261204
GRIDS = ((2,) * 5, (3, 3, 3, 2, 2), (3, 3, 3, 3, 2), (3,) * 5)
TEST_SIZES = (797, 5000, 10000)
SPREAD_NAMES = ("digits", "digits-2x", "pgdl")
REFERENCE = Design((2,) * 5, 797, "digits")
TARGETS = {"good": 24.0, "runner-up": 20.0, "median": 5.0}  # CMI x100 on the reference design
COMPARISONS = 39
ALPHA = 0.01
SUITE_ZOOS = 4  # the suite's zoos: the paired test combined over this many independent zoos


@dataclass
class Sim:
    """One design's zoos: measured gaps (reps, M), the measures' scores (reps, K, M) and the
    correctness of each zoo's test set (kept only when a bootstrap follows)."""

    design: Design
    gaps: np.ndarray
    scores: np.ndarray
    zoos: list
    corrects: list


def simulate(design: Design, noise: np.ndarray, reps: int, seed, keep: bool = True) -> Sim:
    """``reps`` zoos of ``design``, each with one measured test set and one score vector per noise sd."""
    gaps, scores, zoos, corrects = [], [], [], []
    for r in range(reps):
        rng = np.random.default_rng([*np.atleast_1d(seed), r])
        zoo = synthetic_zoo(design, rng)
        correct = zoo.draw_correctness(rng)
        z = np.log(zoo.true_gaps)
        z = (z - z.mean()) / z.std()
        scores.append(z[None, :] + noise[:, None] * rng.standard_normal((len(noise), len(z))))
        gaps.append(zoo.train_acc - correct.mean(axis=1))
        if keep:
            zoos.append(zoo)
            corrects.append(correct)
    return Sim(design, np.stack(gaps), np.stack(scores), zoos, corrects)


def score_rows(arrays, predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """CMI of each row (``agreement_rows``), in chunks that fit the batched kernel's memory."""
    m = predictions.shape[1]
    chunk = max(1, ROW_BUDGET // (m * m))
    return np.concatenate([agreement_rows(arrays, predictions[i:i + chunk], targets[i:i + chunk])["cmi"]
                           for i in range(0, len(predictions), chunk)])


def measure_cmis(sim: Sim) -> np.ndarray:
    """(reps, K) CMI x100 of every measure on every zoo (against the zoo's measured gaps)."""
    reps, k, m = sim.scores.shape
    arrays = synthetic_zoo(sim.design, np.random.default_rng(0)).truth  # the grid codes only
    cmi = score_rows(arrays, sim.scores.reshape(reps * k, m), np.repeat(sim.gaps, k, axis=0))
    return 100 * cmi.reshape(reps, k)


def calibrate(reps: int, seed: int = SEED) -> dict[str, float]:
    """Noise sd of each measure so that its mean CMI x100 on the reference design meets ``TARGETS``:
    mean CMI on a grid of noise sds (same zoos for all), then linear interpolation of the decreasing curve."""
    grid = np.concatenate([np.linspace(0.05, 1.0, 20), np.linspace(1.1, 4.0, 30)])
    sim = simulate(REFERENCE, grid, reps, [seed, 999], keep=False)
    curve = measure_cmis(sim).mean(axis=0)
    order = np.argsort(curve)  # increasing CMI <-> decreasing noise
    return {name: float(np.interp(target, curve[order], grid[order])) for name, target in TARGETS.items()}


def bootstrap(sim: Sim, resamples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per zoo: the good measure's 95% percentile interval width and the paired-test z of good vs each
    other measure, from ``resamples`` joint resamples of its test samples (shared by models and measures)."""
    reps, k, m = sim.scores.shape
    widths, zs = np.empty(reps), np.empty((reps, k - 1))
    for r, (zoo, correct) in enumerate(zip(sim.zoos, sim.corrects)):
        counts = joint_bootstrap_counts(correct.shape[1], resamples, rng)
        targets = zoo.train_acc[None, :] - resampled_accuracies(correct, counts)  # (B, M)
        preds = np.repeat(sim.scores[r][None], resamples, axis=0).reshape(resamples * k, m)
        boot = 100 * score_rows(zoo.truth, preds, np.repeat(targets, k, axis=0)).reshape(resamples, k)
        observed = 100 * score_rows(zoo.truth, sim.scores[r], np.repeat(sim.gaps[r][None], k, axis=0))
        lo, hi = np.nanpercentile(boot[:, 0], [2.5, 97.5])
        widths[r] = hi - lo
        diffs = boot[:, :1] - boot[:, 1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            zs[r] = (observed[0] - observed[1:]) / np.nanstd(diffs, axis=0, ddof=1)
    return {"ci_width": widths, "z": zs}


def paired_power(z: np.ndarray, comparisons: int = COMPARISONS, alpha: float = ALPHA) -> np.ndarray:
    """Share of zoos where the difference is positive and significant: two-sided normal p of z below
    alpha / comparisons (Bonferroni; for the smallest p of the family Holm's threshold is the same)."""
    critical = norm.isf(alpha / comparisons / 2)
    return np.mean(np.nan_to_num(z, nan=0.0) > critical, axis=0)


def stouffer(z: np.ndarray, zoos: int) -> np.ndarray:
    """Combined z of consecutive blocks of ``zoos`` independent zoos (a suite of that many zoos):
    sum of the zoos' z over sqrt(zoos) (Stouffer); the leftover zoos are dropped."""
    blocks = len(z) // zoos
    return np.nan_to_num(z[:blocks * zoos], nan=0.0).reshape(blocks, zoos, -1).sum(axis=1) / math.sqrt(zoos)


def designs(quick: bool) -> list[Design]:
    if quick:
        return [Design(g, n, s) for g in ((2,) * 5, (3, 3, 3, 2, 2)) for n in (797, 5000) for s in ("digits",)]
    return [Design(g, n, s) for s in SPREAD_NAMES for g in GRIDS for n in TEST_SIZES]


def run(quick: bool = False, reps: int | None = None, resamples: int | None = None,
        calibration_reps: int | None = None, log=print) -> dict:
    reps = reps or (12 if quick else 80)
    resamples = resamples or (40 if quick else 60)
    noise = calibrate(calibration_reps or (40 if quick else 300))
    log(f"noise sd (units of the log-gap sd): " + ", ".join(f"{k} {v:.3f}" for k, v in noise.items()))
    sds = np.array(list(noise.values()))
    rows = []
    for d, design in enumerate(designs(quick)):
        start = time.perf_counter()
        sim = simulate(design, sds, reps, [SEED, d])
        cmi = measure_cmis(sim)
        boot = bootstrap(sim, resamples, np.random.default_rng([SEED, d, 10**6]))
        power = paired_power(boot["z"])
        suite_power = paired_power(stouffer(boot["z"], SUITE_ZOOS))
        row = {"grid": "x".join(map(str, design.sizes)), "models": int(sim.gaps.shape[1]), "n_test": design.n_test,
               "spread": design.spread, "gap_sd": float(np.mean(sim.gaps.std(axis=1))),
               "cmi_mean": dict(zip(noise, cmi.mean(axis=0).round(2).tolist())),
               "cmi_sd": dict(zip(noise, cmi.std(axis=0, ddof=1).round(2).tolist())),
               "ci_width_good": float(np.mean(boot["ci_width"])),
               "power_good_vs_runner_up": float(power[0]), "power_good_vs_median": float(power[1]),
               f"power_{SUITE_ZOOS}_zoos_vs_runner_up": float(suite_power[0]),
               f"power_{SUITE_ZOOS}_zoos_vs_median": float(suite_power[1]),
               "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        log(f"{row['grid']:>9} n={design.n_test:>5} {design.spread:>9}: gap sd {row['gap_sd']:.3f}; CMI "
            + ", ".join(f"{k} {row['cmi_mean'][k]:.1f}+-{row['cmi_sd'][k]:.1f}" for k in noise)
            + f"; CI {row['ci_width_good']:.1f}; power vs runner-up {row['power_good_vs_runner_up']:.2f}, "
            f"vs median {row['power_good_vs_median']:.2f} ({row['seconds']} s)")
    return {"noise_sd": noise, "targets": TARGETS, "reps": reps, "resamples": resamples,
            "comparisons": COMPARISONS, "alpha": ALPHA, "seed": SEED, "rows": rows,
            "machine": f"{platform.machine()} {platform.processor() or ''} Python {platform.python_version()}".strip()}


def markdown(result: dict) -> str:
    """The results as the markdown table of docs/power_analysis.md."""
    lines = ["| grid | models | test n | spread | gap sd | CMI good / runner-up / median (mean) | sd of CMI good / runner-up / median"
             " | 95% CI width (good) | power good>runner-up | power good>median"
             f" | power good>runner-up, {SUITE_ZOOS} zoos |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        mean, sd = r["cmi_mean"], r["cmi_sd"]
        lines.append(f"| {r['grid']} | {r['models']} | {r['n_test']} | {r['spread']} | {r['gap_sd']:.3f} | "
                     + " / ".join(f"{mean[k]:.1f}" for k in mean) + " | " + " / ".join(f"{sd[k]:.1f}" for k in sd)
                     + f" | {r['ci_width_good']:.1f} | {r['power_good_vs_runner_up']:.2f} | {r['power_good_vs_median']:.2f} | "
                     f"{r[f'power_{SUITE_ZOOS}_zoos_vs_runner_up']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.power_analysis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="four small designs, few zoos (a smoke run)")
    parser.add_argument("--reps", type=int, help="zoos per design (default 80; quick 12)")
    parser.add_argument("--resamples", type=int, help="joint bootstrap resamples per zoo (default 60; quick 40)")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.quick, args.reps, args.resamples)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(markdown(result))
    print(f"{result['seconds']} s on {result['machine']}, {result['date']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
