"""Time the verdict statistics of one measure on one task: its four scores (CMI, tau, psi, robust
sign-error) on 1000 joint test resamples of the gaps x its 3 repeats, the basic intervals, and the paired
comparison with the best measure, vectorized, against a loop baseline.

    python -m scripts.perf.uncertainty [--resamples 1000] [--repeats 3] [--loop-resamples 20] [--json out.json]

Synthetic tasks with per-sample correctness (``synthetic.correlated_correctness``: 797 test samples,
errors correlated across models): the embedded zoos' grid (32 models), PGDL task 1's grid (96 models) and
a 150-model grid. Ours: ``intervals.score_draws`` of the measure (every score of every repeat against
every resample, the repeat draws, the intervals) and ``comparisons.paired_difference`` with the best
measure; the task's gap resamples and the best measure's draws are shared by every measure of the task
and timed apart (``shared_s``). Baseline: the official scorer ``scoring.conditional_mutual_information``
and ``scoring.kendall_tau`` / ``granulated_kendall`` / ``robust_sign_error`` called on each (resample,
repeat) in a loop, ``--loop-resamples`` of them, scaled to ``--resamples``; both must give the same
scores (to 1e-12).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from benchmark.scores.comparisons import estimate, paired_difference
from benchmark.scores.intervals import score_rows, score_draws
from benchmark.scores.resampling import joint_gap_resamples
from benchmark.scores.scoring import TaskArrays, conditional_mutual_information, granulated_kendall, kendall_tau
from benchmark.scores.robust import robust_sign_error
from .synthetic import TASK1_GRID, correlated_correctness, synthetic_task

DIGITS_GRID = {"convwidth": 2, "depth": 2, "dropout": 2, "weight_decay": 2, "batch_size": 2}  # the embedded zoos
GRID_150 = {"width": 5, "depth": 5, "lr": 3, "batch_size": 2}
GRIDS = {"digits": DIGITS_GRID, "task1": TASK1_GRID, "grid150": GRID_150}
TARGETS_S = {"digits": 1.0, "task1": 5.0, "grid150": 5.0}
TARGET_S = 1.0  # the 32-model zoo's target per measure and task
TEST_SAMPLES = 797


def _task(grid: dict, seed: int) -> tuple[TaskArrays, np.ndarray, np.ndarray]:
    """Arrays of a synthetic zoo, its train accuracies and per-sample test correctness."""
    arrays, _ = synthetic_task(grid, seed=seed)
    rng = np.random.default_rng(seed)
    n = len(arrays.keys)
    true_gap = 0.0075 + 0.09 * arrays.gaps  # gaps spread like the digits zoos'
    train_acc = rng.uniform(0.95, 1.0, n)
    correct = correlated_correctness(1 - train_acc + true_gap, TEST_SAMPLES, 0.68, rng)
    arrays.gaps = train_acc - correct.mean(axis=1)
    return arrays, train_acc, correct


def _loop_scores(arrays: TaskArrays, preds: np.ndarray, gaps: np.ndarray) -> dict[str, np.ndarray]:
    """The official single-vector scores of every repeat against every gap row, in a loop: {score: (G, K)}."""
    out = {s: np.zeros((len(gaps), len(preds))) for s in ("cmi", "kendall_tau", "psi", "robust_sign_error")}
    for b, g in enumerate(gaps):
        copy = TaskArrays(keys=arrays.keys, gaps=g, names=arrays.names, codes=arrays.codes, sizes=arrays.sizes)
        for k, p in enumerate(preds):
            out["cmi"][b, k] = conditional_mutual_information(dict(zip(arrays.keys, p)), copy).cmi
            out["kendall_tau"][b, k] = kendall_tau(p, g)
            out["psi"][b, k] = granulated_kendall(p, copy)["psi"]
            robust = robust_sign_error(p, copy)["robust"]
            out["robust_sign_error"][b, k] = np.nan if robust is None else robust
    return out


def run_one(grid: dict, resamples: int, repeats: int, loop_resamples: int, seed: int = 0) -> dict:
    arrays, train_acc, correct = _task(grid, seed)
    n = len(arrays.keys)
    rng = np.random.default_rng(seed + 1)
    preds = arrays.gaps[None] + rng.normal(0, 0.01, (repeats, n))  # a noisy stochastic measure, K repeats
    best = arrays.gaps[None] + rng.normal(0, 0.003, (repeats, n))

    score_draws(preds, arrays, joint_gap_resamples(correct, train_acc, resamples=5, seed=seed).gaps)  # warm-up
    start = time.perf_counter()
    gaps = joint_gap_resamples(correct, train_acc, resamples=resamples, seed=seed).gaps
    best_draws = score_draws(best, arrays, gaps, ("perf",))
    shared_s = time.perf_counter() - start
    start = time.perf_counter()
    draws = score_draws(preds, arrays, gaps, ("perf",))
    comparison = paired_difference(estimate(best_draws), estimate(draws))
    ours_s = time.perf_counter() - start

    start = time.perf_counter()
    loop = _loop_scores(arrays, preds, gaps[:loop_resamples])
    loop_s = (time.perf_counter() - start) * resamples / loop_resamples
    fast = score_rows(preds, gaps[:loop_resamples], arrays)
    difference = max(float(np.nanmax(np.abs(fast[s] - loop[s]))) for s in loop)
    return {
        "models": n, "hyperparameters": len(arrays.names), "resamples": resamples, "repeats": repeats,
        "ours_s": ours_s, "shared_s": shared_s, "loop_s": loop_s, "loop_resamples_run": loop_resamples,
        "speedup": loop_s / ours_s, "max_abs_difference": difference, "p_value": comparison["p_value"],
        "cmi_interval": draws.intervals["cmi"],
    }


def run(resamples: int = 1000, repeats: int = 3, loop_resamples: int = 20, grids=tuple(GRIDS)) -> dict:
    return {name: run_one(GRIDS[name], resamples, repeats, loop_resamples) for name in grids}


def describe(name: str, r: dict) -> str:
    return (f"{name}: {r['models']} models x {r['hyperparameters']} hyperparameters, {r['repeats']} repeats, "
            f"{r['resamples']} joint test resamples, CMI + tau + psi + robust sign-error: vectorized "
            f"{r['ours_s']:.3f} s per measure and task (plus {r['shared_s']:.3f} s shared by all measures of the "
            f"task: its gap resamples and the best measure's draws), loop {r['loop_s']:.1f} s "
            f"({r['loop_resamples_run']} run, scaled), {r['speedup']:.0f}x; |difference| {r['max_abs_difference']:.1e}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-resamples", type=int, default=20)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    result = run(args.resamples, args.repeats, args.loop_resamples)
    for name, r in result.items():
        print(describe(name, r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    ok = all(r["ours_s"] < TARGETS_S[name] and r["max_abs_difference"] <= 1e-12 for name, r in result.items())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
