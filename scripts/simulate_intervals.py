"""Coverage of the verdict intervals, and size and power of the paired test, by simulation with known truth.

    python -m scripts.simulate_intervals [--experiments 500] [--resamples 1000] [--seed 0] [--json out.json]

Each experiment draws a synthetic zoo shaped like the shipped digits zoos: the 2^5 grid (32 models), true
gaps from additive hyperparameter effects plus noise, clipped to 0.0075 .. 0.0996 (sd about 0.016), train
accuracies 0.86 .. 0.99 (taken as exact), and a fresh test set of 797 samples drawn from the population
(``scripts.perf.synthetic.correlated_correctness``: every model errs with its true rate, errors
correlated across models at about 0.35). The measured gaps are train accuracy minus accuracy on that test
set. Measures are functions of the TRUE gap plus noise:

* ``det_strong``, ``det_weak``: deterministic (one repeat), true gap + a fixed N(0, 0.005 or 0.02) draw;
* ``stoch_a``, ``stoch_b``: stochastic, 3 repeats, each true gap + N(0, 0.008) (a and b: two measures
  equal in truth); ``stoch_c``: N(0, 0.016); ``stoch_d``: N(0, 0.004).

The truth of a score is the measure's score against the TRUE gaps of this zoo (for a stochastic measure
its expectation over the measure's noise, by Monte Carlo): the question a verdict answers is how well the
measure predicts these models' generalization, not their gaps measured on one finite test set. The
intervals (``benchmark.scores.intervals.score_draws``: joint test resamples x drawn repeats, basic
bootstrap) are computed from the measured gaps only, and the simulation counts how often they cover it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import numpy as np

from scripts.perf.synthetic import correlated_correctness
from benchmark.scores.comparisons import best_set, estimate, paired_difference
from benchmark.scores.intervals import RANGES, SCORES, bootstrap_interval, score_draws, score_pairs, score_rows
from benchmark.scores.resampling import joint_gap_resamples
from benchmark.scores.scoring import TaskArrays

GRID = {"convwidth": 2, "depth": 2, "dropout": 2, "weight_decay": 2, "batch_size": 2}
TEST_SAMPLES = 797
LATENT_CORRELATION = 0.68  # gives a correlation of about 0.35 between two models' per-sample errors
MEASURES = {"det_strong": (0.005, 1), "det_weak": (0.02, 1), "stoch_a": (0.008, 3), "stoch_b": (0.008, 3),
            "stoch_c": (0.016, 3), "stoch_d": (0.004, 3)}
NULL_PAIR = ("stoch_a", "stoch_b")
POWER_PAIR = ("stoch_d", "stoch_c")
BEST_SET = ("stoch_d", "stoch_a", "stoch_c", "det_weak")
TRUTH_DRAWS = 200


def synthetic_zoo(rng: np.random.Generator) -> tuple[TaskArrays, np.ndarray, np.ndarray]:
    """(arrays with gaps = TRUE gaps, train accuracies, true test error rates) of one digits-like zoo."""
    names = list(GRID)
    cells = np.array(list(itertools.product(*(range(GRID[n]) for n in names))))
    effects = rng.normal(0, 0.007, len(names))
    true_gap = np.clip(0.045 + (2 * cells - 1) @ effects + rng.normal(0, 0.006, len(cells)), 0.0075, 0.0996)
    train_acc = rng.uniform(0.86, 0.99, len(cells))
    arrays = TaskArrays(keys=[f"model_{i}" for i in range(len(cells))], gaps=true_gap, names=names,
                        codes={n: cells[:, k].astype(np.int64) for k, n in enumerate(names)}, sizes=dict(GRID))
    return arrays, train_acc, 1 - train_acc + true_gap


def experiment(rng: np.random.Generator, resamples: int, scores=SCORES, measures=MEASURES) -> dict:
    """One zoo, one test set: per measure and score (truth, estimate, interval); the paired tests' p; the
    confidence set of the best and the true best."""
    arrays, train_acc, test_error = synthetic_zoo(rng)
    true_gap = arrays.gaps.copy()
    n = len(true_gap)
    correct = correlated_correctness(test_error, TEST_SAMPLES, LATENT_CORRELATION, rng)
    measured = TaskArrays(keys=arrays.keys, gaps=train_acc - correct.mean(axis=1), names=arrays.names,
                          codes=arrays.codes, sizes=arrays.sizes)
    gaps = joint_gap_resamples(correct, train_acc, resamples=resamples, seed=int(rng.integers(2**63))).gaps
    identity = (str(rng.integers(2**63)),)
    out = {"measures": {}, "tests": {}}
    fresh = np.stack([train_acc - correlated_correctness(test_error, TEST_SAMPLES, LATENT_CORRELATION, rng).mean(axis=1)
                      for _ in range(TRUTH_DRAWS)])  # gaps measured on other test sets of the same size
    draws = {}
    for name, (sd, repeats) in measures.items():
        if repeats == 1:
            preds = true_gap[None] + rng.normal(0, sd, (1, n))
            monte_carlo = preds
        else:
            preds = true_gap[None] + rng.normal(0, sd, (repeats, n))
            monte_carlo = true_gap[None] + rng.normal(0, sd, (TRUTH_DRAWS, n))
        # the score against the true gaps (its mean over the measure's noise), and its expectation against
        # gaps measured on a test set of this size (over test sets and the measure's noise)
        truth = {s: float(np.nanmean(v)) for s, v in score_rows(monte_carlo, true_gap, arrays, scores=scores).items()}
        rows = score_pairs(monte_carlo, fresh, arrays, scores=scores)
        expected = {s: float(np.nanmean(v)) for s, v in rows.items()}
        d = score_draws(preds, measured, gaps, identity, scores=scores)
        draws[name] = d
        out["measures"][name] = {s: {"truth": truth[s], "expected": expected[s], "estimate": d.point[s],
                                     "centred": d.intervals[s],
                                     "basic": bootstrap_interval(d.point[s], d.draws[s], bounds=RANGES[s], method="basic")}
                                 for s in scores}
    for label, (a, b) in (("null", NULL_PAIR), ("power", POWER_PAIR)):
        if a in draws and b in draws:
            out["tests"][label] = paired_difference(estimate(draws[a]), estimate(draws[b]))["p_value"]
    contenders = [m for m in BEST_SET if m in draws]
    if contenders:
        truths = {m: out["measures"][m]["cmi"]["truth"] for m in contenders}
        out["true_best"] = max(truths, key=truths.get)
        out["best_set"] = sorted(best_set({m: estimate(draws[m]) for m in contenders}))
    return out


def simulate(experiments: int, resamples: int, seed: int = 0, scores=SCORES, measures=MEASURES) -> dict:
    rng = np.random.default_rng(seed)
    runs = [experiment(rng, resamples, scores, measures) for _ in range(experiments)]
    table = {}
    for name in measures:
        for s in scores:
            rows = [r["measures"][name][s] for r in runs]
            entry = {"truth": float(np.mean([row["truth"] for row in rows])),
                     "expected": float(np.mean([row["expected"] for row in rows])),
                     "bias": float(np.mean([row["estimate"] - row["truth"] for row in rows]))}
            for method in ("centred", "basic"):
                for target in ("truth", "expected"):
                    kept = [row for row in rows if row[method] is not None]
                    entry[f"{method}_{target}"] = float(np.mean([row[method][0] <= row[target] <= row[method][1]
                                                                 for row in kept])) if kept else float("nan")
                entry[f"{method}_width"] = float(np.mean([row[method][1] - row[method][0] for row in rows
                                                          if row[method] is not None]))
            table[(name, s)] = entry
    tests = {label: float(np.mean([r["tests"][label] < 0.05 for r in runs])) for label in ("null", "power")
             if all(label in r["tests"] for r in runs)}
    out = {"table": table, "rejection": tests, "experiments": experiments, "resamples": resamples, "seed": seed}
    if all("best_set" in r for r in runs):
        out["best_set_coverage"] = float(np.mean([r["true_best"] in r["best_set"] for r in runs]))
        out["best_set_size"] = float(np.mean([len(r["best_set"]) for r in runs]))
    return out


def markdown(result: dict) -> str:
    lines = ["| measure | score | truth: vs true gaps | expected vs measured gaps | bias vs truth | centred: covers truth "
             "| centred: covers expected | basic: covers truth | basic: covers expected | width centred / basic |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (name, s), row in result["table"].items():
        lines.append(f"| {name} | {s} | {row['truth']:.3f} | {row['expected']:.3f} | {row['bias']:+.3f} | "
                     f"{row['centred_truth']:.3f} | {row['centred_expected']:.3f} | {row['basic_truth']:.3f} | "
                     f"{row['basic_expected']:.3f} | {row['centred_width']:.3f} / {row['basic_width']:.3f} |")
    r = result["rejection"]
    lines.append("")
    if "null" in r:
        lines.append(f"Paired test at 0.05, {NULL_PAIR[0]} vs {NULL_PAIR[1]} (equal in truth): rejection rate "
                     f"{r['null']:.3f}; {POWER_PAIR[0]} vs {POWER_PAIR[1]}: power {r['power']:.3f}.")
    if "best_set_coverage" in result:
        lines.append(f"Confidence set of the best among {', '.join(BEST_SET)}: contains the true best in "
                     f"{result['best_set_coverage']:.3f} of experiments, mean size {result['best_set_size']:.2f}.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=500)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = simulate(args.experiments, args.resamples, args.seed)
    print(markdown(result))
    print(f"\n{args.experiments} experiments x {args.resamples} resamples, seed {args.seed}: "
          f"{time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**result, "table": {f"{m}|{s}": v for (m, s), v in result["table"].items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
