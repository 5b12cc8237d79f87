"""Time the vectorized CMI against the plain-loop transcription of the official algorithm.

    python -m scripts.perf.cmi [--repeat 200] [--json out.json]

Both run in this process on the same synthetic 96-model, 6-hyperparameter task (PGDL task 1's grid)
and the same predictions; the results must agree to 1e-9 and the ratio of times is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from tests.reference_cmi import reference_cmi
from benchmark.scores.scoring import conditional_mutual_information
from .synthetic import TASK1_GRID, synthetic_task


def run(repeat: int = 200, loop_repeat: int = 3, seed: int = 0) -> dict:
    arrays, models = synthetic_task(TASK1_GRID, seed=seed, tie_levels=20)
    rng = np.random.default_rng(seed + 1)
    predictions = {k: float(v) for k, v in zip(arrays.keys, rng.integers(0, 50, len(arrays.keys)))}

    fast = conditional_mutual_information(predictions, arrays).cmi  # warm-up and result
    start = time.perf_counter()
    for _ in range(repeat):
        conditional_mutual_information(predictions, arrays)
    fast_s = (time.perf_counter() - start) / repeat

    start = time.perf_counter()
    for _ in range(loop_repeat):
        slow, _ = reference_cmi(predictions, models)
    loop_s = (time.perf_counter() - start) / loop_repeat

    return {
        "models": len(arrays.keys),
        "hyperparameters": len(arrays.names),
        "vectorized_s": fast_s,
        "loop_s": loop_s,
        "speedup": loop_s / fast_s,
        "abs_difference": abs(fast - slow),
        "cmi": fast,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--loop-repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    result = run(args.repeat, args.loop_repeat)
    print(
        f"CMI on {result['models']} models x {result['hyperparameters']} hyperparameters: "
        f"vectorized {result['vectorized_s'] * 1e3:.2f} ms, loop {result['loop_s'] * 1e3:.0f} ms, "
        f"speedup {result['speedup']:.0f}x (target >= 100x), |difference| {result['abs_difference']:.1e}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    ok = result["speedup"] >= 100 and result["abs_difference"] <= 1e-9
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
