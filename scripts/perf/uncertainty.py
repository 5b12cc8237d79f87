"""Time the uncertainty of one measure on one task: 95% intervals over its repeats and the paired
bootstrap test against the best measure over 1000 resamples, vectorized, against a loop baseline.

    python -m scripts.perf.uncertainty [--resamples 1000] [--repeats 3] [--loop-resamples 100] [--json out.json]

Ours (``benchmark.bootstrap``): the weighted pair counts of all resamples at once (``BootstrapCMI``: its
set-up for the task, then one sparse product per repeat), the repeat draws, the difference from the
best and its p-value, and the Student-t intervals of CMI, tau and psi over the repeats. The set-up
is shared by every measure of a task; it is counted here in full, for each measure. Baseline: the
same resamples scored by a loop calling the (already vectorized) official scorer
``scoring.conditional_mutual_information`` on each resampled zoo; it runs ``--loop-resamples`` of
them and is scaled to ``--resamples``. Both must give the same CMIs (to 1e-12).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from benchmark.bootstrap import BootstrapCMI, t_interval
from benchmark.scoring import TaskArrays, conditional_mutual_information
from .synthetic import TASK1_GRID, synthetic_task

DIGITS_GRID = {"convwidth": 2, "depth": 2, "dropout": 2, "weight_decay": 2, "batch_size": 2}  # the embedded zoos
TARGET_S = 1.0


def _ours(arrays: TaskArrays, weights: np.ndarray, preds: np.ndarray, best: np.ndarray, draws: np.ndarray) -> tuple:
    """The whole comparison of one measure with the best on one task; returns (CMIs, p, interval, seconds of
    the part shared by every measure of the task: set-up and the best measure's CMIs)."""
    start = time.perf_counter()
    scorer = BootstrapCMI(arrays, weights)
    best_cmis = np.stack([scorer(p) for p in best], axis=1)
    shared_s = time.perf_counter() - start
    cmis = np.stack([scorer(p) for p in preds], axis=1)  # (B, K)
    d = (best_cmis * draws).sum(axis=1) - (cmis * draws).sum(axis=1)
    p_value = min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))
    interval = t_interval([conditional_mutual_information(dict(zip(arrays.keys, p)), arrays).cmi for p in preds])
    return cmis, p_value, interval, shared_s


def run_one(grid: dict, resamples: int, repeats: int, loop_resamples: int, seed: int = 0) -> dict:
    arrays, _ = synthetic_task(grid, seed=seed, tie_levels=20)
    n = len(arrays.keys)
    rng = np.random.default_rng(seed + 1)
    preds = arrays.gaps[None] + rng.normal(0, 0.3, (repeats, n))  # a noisy stochastic measure, K repeats
    best = arrays.gaps[None] + rng.normal(0, 0.1, (repeats, n))
    index = rng.integers(0, n, size=(resamples, n))
    weights = np.stack([np.bincount(i, minlength=n) for i in index]).astype(np.float64)
    draws = rng.multinomial(repeats, np.full(repeats, 1 / repeats), size=resamples) / repeats

    _ours(arrays, weights[:10], preds, best, draws[:10])  # warm-up (imports, allocations)
    start = time.perf_counter()
    cmis, p_value, _, shared_s = _ours(arrays, weights, preds, best, draws)
    ours_s = time.perf_counter() - start

    keys = [f"model_{j}" for j in range(n)]
    start = time.perf_counter()
    loop = np.zeros((loop_resamples, repeats))
    for b in range(loop_resamples):
        i = index[b]
        copies = TaskArrays(keys=keys, gaps=arrays.gaps[i], names=arrays.names,
                            codes={h: c[i] for h, c in arrays.codes.items()}, sizes=arrays.sizes)
        for k in range(repeats):
            loop[b, k] = conditional_mutual_information(dict(zip(keys, preds[k][i])), copies).cmi
            conditional_mutual_information(dict(zip(keys, best[k][i])), copies)  # the best measure's too
    loop_s = (time.perf_counter() - start) * resamples / loop_resamples
    return {
        "models": n, "hyperparameters": len(arrays.names), "resamples": resamples, "repeats": repeats,
        "ours_s": ours_s, "shared_s": shared_s, "marginal_s": ours_s - shared_s, "loop_s": loop_s, "loop_resamples_run": loop_resamples, "speedup": loop_s / ours_s,
        "max_abs_difference": float(np.max(np.abs(cmis[:loop_resamples] - loop))), "p_value": p_value,
    }


def run(resamples: int = 1000, repeats: int = 3, loop_resamples: int = 100) -> dict:
    return {"digits": run_one(DIGITS_GRID, resamples, repeats, loop_resamples),
            "task1": run_one(TASK1_GRID, resamples, repeats, loop_resamples)}


def describe(name: str, r: dict) -> str:
    return (f"{name}: {r['models']} models x {r['hyperparameters']} hyperparameters, {r['repeats']} repeats, "
            f"{r['resamples']} resamples: vectorized {r['ours_s']:.3f} s per measure and task ({r['shared_s']:.3f} s "
            f"of it shared by all measures of the task: set-up and the best measure's CMIs; {r['marginal_s']:.3f} s "
            f"for each further measure), loop "
            f"{r['loop_s']:.1f} s ({r['loop_resamples_run']} run, scaled), {r['speedup']:.1f}x; "
            f"|difference| {r['max_abs_difference']:.1e}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-resamples", type=int, default=100)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    result = run(args.resamples, args.repeats, args.loop_resamples)
    for name, r in result.items():
        print(describe(name, r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    ok = all(r["ours_s"] < TARGET_S and r["max_abs_difference"] <= 1e-12 for r in result.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
