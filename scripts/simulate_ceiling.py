"""Bias, spread and interval coverage of the gap-noise-ceiling estimators where the truth is known, and
the ceiling of the pinned digits zoos: the tables of docs/ceiling.md.

``python -m scripts.simulate_ceiling [--quick] [--json FILE]``

For each design (``benchmark.scores.simulation``): ``reps`` synthetic zoos, each with its true ceiling
(``true_ceiling``, Monte Carlo over ``truth_repeats`` test sets) and one measured test set on which
every estimator of ``benchmark.scores.ceiling`` runs; the error is estimate - truth, in CMI x100 and
tau x100. The nested designs take a pinned zoo's 797 test samples as the population. Coverage: how often
the default estimator's 95% interval holds the true ceiling. Seeded: zoo r of a design is seed 1000 + r.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np

from benchmark.noise_ceiling import task_noise_ceiling
from benchmark.scores import ceiling as C
from benchmark.scores.simulation import Design, nested_zoo, synthetic_zoo, true_ceiling
from benchmark.scores.scoring import TaskArrays
from task_loaders import load_task
from task_loaders.pinned import pinned_zoo
from task_loaders.zoo import read_correctness

PINNED = ("digits-bn", "digits-nobn")


@dataclass
class Plan:
    label: str
    make_zoo: object  # rng -> Zoo
    reps: int
    resamples: int
    truth_repeats: int
    coverage: tuple[int, int] | None  # (outer, inner) of the interval, or None: no coverage run


def plans(quick: bool) -> list[Plan]:
    small = (dict(reps=100, resamples=300, truth_repeats=200) if not quick
             else dict(reps=12, resamples=100, truth_repeats=50))
    large = dict(reps=10, resamples=40, truth_repeats=40) if not quick else dict(reps=2, resamples=20, truth_repeats=10)
    out = [Plan(Design((2,) * 5, 797).label, lambda rng: synthetic_zoo(Design((2,) * 5, 797), rng),
                coverage=(100, 10) if not quick else (30, 5), **small)]
    for name in PINNED:
        arrays, train_acc, correct = pinned_arrays(name)
        out.append(Plan(f"nested {name} (its 797 samples as population), n=797",
                        lambda rng, a=arrays, t=train_acc, c=correct: nested_zoo(a, t, c),
                        coverage=(100, 10) if not quick else (30, 5), **small))
    for sizes in ((3, 3, 3, 2, 2), (3,) * 5):
        for n in (5000, 10000):
            for spread in ("digits", "pgdl"):
                design = Design(sizes, n, spread)
                out.append(Plan(design.label, lambda rng, d=design: synthetic_zoo(d, rng), coverage=None, **large))
    return out


def pinned_arrays(name: str) -> tuple[TaskArrays, np.ndarray, np.ndarray]:
    task = load_task(pinned_zoo(name))
    correct = read_correctness(task.path, task.model_ids, "test")
    return TaskArrays.from_task(task), np.array([task.train_acc(m) for m in task.model_ids]), correct


def estimates(arrays, train_acc, correct, resamples, seed) -> dict[str, dict]:
    out = {name: f(arrays, train_acc, correct, resamples, seed) for name, f in C.ESTIMATORS.items()}
    out["latent fallback"] = C.latent_ceiling(arrays, train_acc, correct.mean(axis=1), correct.shape[1], resamples, seed)
    return out


def run_plan(plan: Plan) -> dict:
    errors: dict[str, dict[str, list]] = {}
    truths, covered = [], []
    for r in range(plan.reps):
        rng = np.random.default_rng(1000 + r)
        zoo = plan.make_zoo(rng)
        correct = zoo.draw_correctness(rng)
        measured = zoo.measure(correct)
        truth = true_ceiling(zoo, plan.truth_repeats, rng)
        truths.append(truth)
        for name, est in estimates(measured, zoo.train_acc, correct, plan.resamples, r).items():
            e = errors.setdefault(name, {"cmi": [], "kendall_tau": []})
            e["cmi"].append(est["cmi"] - truth["cmi"])
            e["kendall_tau"].append(est["kendall_tau"] - truth["kendall_tau"])
        if plan.coverage:
            default = C.ceiling(measured, zoo.train_acc, correct, plan.resamples, r, interval=True,
                                outer=plan.coverage[0], inner=plan.coverage[1])
            covered.append([lo <= truth[k] <= hi for k in ("cmi", "kendall_tau") for lo, hi in [default[f"{k}_interval"]]])
    out = {"label": plan.label, "reps": plan.reps, "resamples": plan.resamples, "truth_repeats": plan.truth_repeats,
           "true_cmi": float(np.mean([t["cmi"] for t in truths])),
           "true_tau": float(np.mean([t["kendall_tau"] for t in truths])),
           "truth_mc_se_cmi": float(np.mean([t["cmi_se"] for t in truths])),
           "estimators": {name: {k: {"bias": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                                     "se": float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0}
                                 for k, v in e.items()} for name, e in errors.items()}}
    if covered:
        cov = np.array(covered)
        out["coverage"] = {"cmi": float(cov[:, 0].mean()), "kendall_tau": float(cov[:, 1].mean()),
                           "outer": plan.coverage[0], "inner": plan.coverage[1]}
    return out


def pinned_rows(quick: bool) -> list[dict]:
    rows = []
    for name in PINNED:
        task = load_task(pinned_zoo(name))
        arrays, train_acc, correct = pinned_arrays(name)
        train_correct = read_correctness(task.path, task.model_ids, "train")
        outer, inner = (200, 25) if not quick else (30, 5)
        start = time.perf_counter()
        default = C.ceiling(arrays, train_acc, correct, C.DEFAULT_RESAMPLES, 0, interval=True, outer=outer, inner=inner)
        seconds = time.perf_counter() - start
        with_train = C.ceiling(arrays, train_acc, correct, C.DEFAULT_RESAMPLES, 0, train_correct=train_correct)
        others = estimates(arrays, train_acc, correct, C.DEFAULT_RESAMPLES, 0)
        printed = task_noise_ceiling(task)
        rows.append({"zoo": name, "default": default, "seconds": seconds, "with_train_noise": with_train,
                     "printed_split_half": {"cmi": printed["cmi"], "kendall_tau": printed["kendall_tau"]},
                     "others": {k: {"cmi": v["cmi"], "kendall_tau": v["kendall_tau"]} for k, v in others.items()}})
    return rows


def markdown(results: list[dict], pinned: list[dict]) -> str:
    names = list(results[0]["estimators"])
    lines = ["Bias (sd) of each estimator, estimate - true ceiling, CMI x100:", "",
             "| design | reps | true CMI | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for res in results:
        cells = [f"{res['estimators'][n]['cmi']['bias'] * 100:+.1f} ({res['estimators'][n]['cmi']['sd'] * 100:.1f})"
                 for n in names]
        lines.append(f"| {res['label']} | {res['reps']} | {res['true_cmi'] * 100:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "Bias (sd) of each estimator, Kendall tau x100:", "",
              "| design | true tau | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for res in results:
        cells = [f"{res['estimators'][n]['kendall_tau']['bias'] * 100:+.1f} "
                 f"({res['estimators'][n]['kendall_tau']['sd'] * 100:.1f})" for n in names]
        lines.append(f"| {res['label']} | {res['true_tau'] * 100:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "Coverage of the default estimator's 95% interval:", "",
              "| design | reps | outer x inner | CMI | tau |", "|---|---|---|---|---|"]
    for res in results:
        if "coverage" in res:
            c = res["coverage"]
            lines.append(f"| {res['label']} | {res['reps']} | {c['outer']} x {c['inner']} | {c['cmi']:.2f} | "
                         f"{c['kendall_tau']:.2f} |")
    lines += ["", "Pinned zoos (CMI x100, tau):", "",
              "| zoo | ceiling (default) [95% interval] | tau [95% interval] | with train noise | split-half "
              "(printed today) | " + " | ".join(pinned[0]["others"]) + " |",
              "|---|---|---|---|---|" + "---|" * len(pinned[0]["others"])]
    for row in pinned:
        d = row["default"]
        lo, hi = d["cmi_interval"]
        tlo, thi = d["kendall_tau_interval"]
        others = " | ".join(f"{v['cmi'] * 100:.1f} / {v['kendall_tau']:.2f}" for v in row["others"].values())
        lines.append(f"| {row['zoo']} | {d['cmi'] * 100:.1f} [{lo * 100:.1f}, {hi * 100:.1f}] | {d['kendall_tau']:.2f} "
                     f"[{tlo:.2f}, {thi:.2f}] | {row['with_train_noise']['cmi'] * 100:.1f} | "
                     f"{row['printed_split_half']['cmi'] * 100:.2f} / {row['printed_split_half']['kendall_tau']:.2f} | "
                     f"{others} |")
    lines += ["", "Time of the default with its interval on a pinned zoo: "
              + ", ".join(f"{r['zoo']} {r['seconds']:.1f} s" for r in pinned)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.simulate_ceiling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few replications of each design (a smoke run)")
    parser.add_argument("--json", help="also write every number to this JSON file")
    parser.add_argument("--only", help="run only the designs whose label contains this text")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = []
    for plan in plans(args.quick):
        if args.only and args.only not in plan.label:
            continue
        t0 = time.perf_counter()
        results.append(run_plan(plan))
        print(f"{plan.label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    pinned = pinned_rows(args.quick)
    print(markdown(results, pinned))
    print(f"\n{platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}, numpy "
          f"{np.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{time.perf_counter() - start:.0f} s in all{' (--quick)' if args.quick else ''}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"designs": results, "pinned": pinned}, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
