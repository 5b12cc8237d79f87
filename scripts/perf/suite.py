"""The performance suite: every fast path beside its baseline, in one run, as a JSON and a Markdown report.

    python -m scripts.perf [--out DIR] [--quick] [--skip SECTION ...] [--task PATH ...]

Sections (each: the numbers, the ratio, the target, pass/fail), in this order of the report:

* ``cmi``: CMI evaluation, vectorized versus a plain loop transcription of the official algorithm
  (``scripts.perf.cmi``); target >= 100x.
* ``tfrecord``: reading a synthetic PGDL split to arrays, ``read_split`` versus TensorFlow's
  ``tf.data`` reader in MB/s (``scripts.perf.tfrecord``); target >= 1x the faster TensorFlow
  variant; without TensorFlow our side only, with a note.
* ``activations``: five representation measures sharing one model view versus recomputing the
  activations per measure (``scripts.perf.activations``); target: the five on one view under 5x
  one measure alone.
* ``fragmentation``: the ``fragmentation`` measure's grid throughput on the task-1-sized VGG, points/s
  and GFLOP/s, versus torch's own ``torch.mm`` GFLOP/s at the same thread count
  (``scripts.perf.fragmentation``); target >= 0.5, at 1 thread and at every usable core.
* ``leaderboard``: ``pgdl-bench leaderboard`` end to end as a subprocess, on a cold then a warm
  results store (``scripts.perf.end_to_end``); target cold < 300 s, warm < 10 s.
* ``uncertainty``: one measure on one task, 3 repeats: its four scores on 1000 joint test resamples of
  the gaps, the intervals and the paired test against the best measure, vectorized, versus a loop of
  the single-vector scorers (``scripts.perf.uncertainty``); target < 1 s per measure and task on the
  embedded zoos' grid (32 models), < 5 s on PGDL task 1's (96 models) and a 150-model grid.

Writes ``DIR/perf_report.json`` and ``DIR/perf_report.md`` (default DIR ``perf_report``) and prints
the Markdown. ``--quick`` shrinks every section (seconds, not minutes; a smoke test of the suite, not
a measurement: its leaderboard computes one measure only). The exit status is 1 when a section
misses its target or fails to run, else 0. Timings depend on the machine's load: the report records
the load average before and after.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import sys
import time
import traceback
from pathlib import Path

SECTIONS = ("cmi", "tfrecord", "activations", "fragmentation", "leaderboard", "uncertainty")
LABELS = {"cmi": "(a) CMI", "tfrecord": "(b) TFRecord", "activations": "(c) activations",
          "fragmentation": "(d) fragmentation", "leaderboard": "(e) leaderboard", "uncertainty": "(f) uncertainty"}
TITLES = {
    "cmi": "(a) CMI evaluation: vectorized vs plain loop",
    "tfrecord": "(b) TFRecord reading: read_split vs TensorFlow",
    "activations": "(c) Model view: shared activations vs recomputation per measure",
    "fragmentation": "(d) Fragmentation grid throughput vs torch.mm",
    "leaderboard": "(e) Default leaderboard end to end: cold and warm store",
    "uncertainty": "(f) Intervals and paired test over 1000 joint test resamples: vectorized vs loop",
}
# Run order: the torch sections before TensorFlow is imported (its thread pools would share the cores).
RUN_ORDER = ("cmi", "uncertainty", "activations", "fragmentation", "tfrecord", "leaderboard")
CMI_TARGET = 100.0
TFRECORD_TARGET = 1.0
ACTIVATIONS_TARGET = 5.0
FRAGMENTATION_TARGET = 0.5
QUICK_MEASURES = ("weight_norm",)


# -- machine -----------------------------------------------------------------------------------------


def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    import numpy
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        from task_loaders.crc32c import FAST as fast_crc
    except ImportError:
        fast_crc = None
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": _version("scipy"),
        "tensorflow": _version("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-intel"),
        "google_crc32c": _version("google-crc32c"),
        "fast_crc32c": fast_crc,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# -- sections -----------------------------------------------------------------------------------------


def _check(name, ours, baseline, ratio, target, passed) -> dict:
    return {"name": name, "ours": ours, "baseline": baseline, "ratio": ratio, "target": target, "pass": passed}


def section_cmi(quick: bool, args) -> dict:
    from .cmi import run

    r = run(repeat=20 if quick else 200, loop_repeat=1 if quick else 3)
    agree = r["abs_difference"] <= 1e-9
    check = _check("CMI, 96 models x 6 hyperparameters", f"vectorized {r['vectorized_s'] * 1e3:.3f} ms",
                   f"plain loop {r['loop_s'] * 1e3:.1f} ms", r["speedup"],
                   f">= {CMI_TARGET:g}x, results equal to 1e-9", r["speedup"] >= CMI_TARGET and agree)
    details = [f"synthetic task with PGDL task 1's grid: {r['models']} models, {r['hyperparameters']} "
               f"hyperparameters, tied gaps; both implementations on the same predictions in this process",
               f"vectorized `scoring.conditional_mutual_information`: {r['vectorized_s'] * 1e3:.3f} ms per evaluation",
               f"plain loop (`tests.reference_cmi`): {r['loop_s'] * 1e3:.1f} ms per evaluation",
               f"speedup {r['speedup']:.0f}x; |difference| {r['abs_difference']:.1e} (CMI {r['cmi']:.6f})"]
    return {"results": r, "checks": [check], "details": details, "notes": []}


def section_tfrecord(quick: bool, args) -> dict:
    from .tfrecord import run

    r = run(megabytes=4.0 if quick else 64.0, repeat=2 if quick else 3)
    notes = []
    tf = r["tensorflow"]
    if tf is None:
        notes.append(f"TensorFlow is not installed here ({r['tensorflow_missing']}): only our reader was timed")
        baseline, passed = "TensorFlow absent", None
    else:
        v = tf["variants"][tf["best_variant"]]
        baseline = f"{v['mb_s']:.0f} MB/s (tf.data, {tf['best_variant']})"
        passed = r["ratio"] >= TFRECORD_TARGET and r["identical"]
    if not r["identical"]:
        notes.append("the readers returned DIFFERENT arrays")
    if not r["fast_crc32c"]:
        notes.append("google-crc32c is missing: CRCs were computed in pure Python")
    check = _check(f"read a {r['megabytes']:.0f} MB split to arrays, CRCs checked", f"{r['ours_mb_s']:.0f} MB/s",
                   baseline, r["ratio"], f">= {TFRECORD_TARGET:g}x the faster TensorFlow reader", passed)
    details = [f"{r['records']} records of float32 {tuple(r['record_shape'])} + int32 label in {r['shards']} "
               f"shard(s) of 2,000, "
               f"{r['megabytes']:.1f} MB on disk (PGDL layout, written by `write_split`); best of {r['repeat']}",
               f"ours, `read_split` (bulk fast path): {r['ours_s']:.3f} s = {r['ours_mb_s']:.0f} MB/s",
               f"ours, record-by-record streaming path (the reader before the fast path): {r['ours_streaming_s']:.3f} s"
               f" = {r['ours_streaming_mb_s']:.0f} MB/s; fast path {r['fast_over_streaming']:.1f}x faster"]
    if tf is not None:
        for name, v in tf["variants"].items():
            how = ("map(parse_single_example + parse_tensor), example by example, as the PGDL ingestion"
                   if name == "official" else "the same parse, num_parallel_calls=AUTOTUNE, batch(1024)")
            details.append(f"TensorFlow {tf['version']} {name}: {how}: {v['s']:.3f} s = {v['mb_s']:.0f} MB/s "
                           f"(ours {r['ours_mb_s'] / v['mb_s']:.1f}x)")
        details.append(f"all readers returned identical arrays: {r['identical']}")
    return {"results": r, "checks": [check], "details": details, "notes": notes}


def section_activations(quick: bool, args) -> dict:
    from .activations import FIVE, run

    r = run(samples=100 if quick else 1000)
    check = _check(f"{len(FIVE)} representation measures on one model",
                   f"shared view {r['five_shared_s']:.2f} s", f"recomputed per measure {r['five_recomputed_s']:.2f} s",
                   r["recomputed_over_shared"],
                   f"shared < {ACTIVATIONS_TARGET:g}x one measure alone (is {r['shared_over_one_measure']:.2f}x)",
                   r["shared_over_one_measure"] < ACTIVATIONS_TARGET)
    details = [f"VGG (CIFAR-10 input, width 32, depth 3, {r['hidden_layers']} hidden layers), {r['samples']} "
               f"random samples; measures: {', '.join(FIVE)}",
               f"one streamed forward pass capturing every hidden layer: {r['forward_s']:.2f} s",
               f"one measure alone on a fresh view: {r['one_measure_s']:.2f} s",
               f"five measures on one shared view ({r['shared_forward_passes']} forward pass(es)): "
               f"{r['five_shared_s']:.2f} s = {r['shared_over_one_measure']:.2f}x one measure",
               f"five measures, each on a fresh view (recomputation): {r['five_recomputed_s']:.2f} s = "
               f"{r['recomputed_over_shared']:.1f}x the shared view"]
    return {"results": r, "checks": [check], "details": details, "notes": []}


def _threads(n: int) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")


def section_fragmentation(quick: bool, args) -> dict:
    from .fragmentation import VARIANT_IMAGES, run

    usable = machine_info()["usable_cpus"] or 1
    threads = (1,) if quick else tuple(sorted({1, usable}))
    r = run(threads=threads, num_triplets=1 if quick else 5, train=100 if quick else 300,
            mm_repeat=3 if quick else 10, variant_repeat=1 if quick else 3)
    checks, details = [], [
        f"network `{r['network']}`: {r['parameters']:,} parameters, {r['flops_per_point'] / 1e9:.4f} GFLOP per "
        f"point (2 x MACs of every conv and dense layer, from their shapes)",
        f"the measure's path at its real settings: R = {r['resolution']}, padding 0.1, batch_size "
        f"{r['batch_size']}, `view.logits`, channels-last batches; matmul: {r['matmul']}"]
    for t in r["by_threads"]:
        checks.append(_check(f"grid points, {_threads(t['threads'])}",
                             f"{t['points_per_s']:.0f} points/s = {t['gflops']:.1f} GFLOP/s",
                             f"torch.mm {t['matmul_gflops']:.1f} GFLOP/s", t["ratio"],
                             f">= {FRAGMENTATION_TARGET:g} of torch.mm", t["ratio"] >= FRAGMENTATION_TARGET))
        v = t["variants_points_per_s"]
        details.append(
            f"{_threads(t['threads'])}: {t['points']} grid points ({t['triplets']} triplets) in {t['measure_s']:.2f} s "
            f"= {t['points_per_s']:.0f} points/s, {t['gflops']:.1f} GFLOP/s; forward passes {t['forward_s']:.2f} s "
            f"({t['forward_points_per_s']:.0f} points/s), grid generation and counting {t['overhead_s']:.3f} s; "
            f"torch.mm {t['matmul_gflops_before']:.1f} / {t['matmul_gflops_after']:.1f} GFLOP/s before / after; "
            f"ratio {t['ratio']:.2f}")
        if v:
            details.append(f"{_threads(t['threads'])}, forward passes only, {VARIANT_IMAGES} random images "
                           "(in batches of 256 unless named): "
                           + ", ".join(f"{name.replace('_', ' ')} {pps:.0f} points/s ({t['variants_ratio'][name]:.2f} "
                                       "of torch.mm)" for name, pps in v.items()))
    return {"results": r, "checks": checks, "details": details, "notes": []}


def section_leaderboard(quick: bool, args) -> dict:
    from .end_to_end import run

    measures = list(args.measure or (QUICK_MEASURES if quick else ()))
    r = run(tasks=args.task or (), measures=measures)
    for name in ("cold", "warm"):  # the temporary folder's name says nothing
        r[name]["summary"] = re.sub(r"\S*pgdl-perf-leaderboard-[^/\s]+", "TMP", r[name]["summary"])
    notes = []
    if r["subcommand"] != "leaderboard":
        notes.append("this checkout has no `leaderboard` subcommand: `score` was timed instead")
    if not r["default_leaderboard"]:
        notes.append("not the default leaderboard: " + ("quick mode, " if quick and not args.measure else "")
                     + f"measures {measures or 'all'}, tasks {args.task or 'the default zoos'}")
    if r["zoos_cached_before"] is False:
        notes.append("the default zoos were not in the zoo cache: the cold run includes building them")
    checks = []
    for name in ("cold", "warm"):
        s, limit = r[name], r[f"{name}_limit_s"]
        ok = s["returncode"] in (0, 1)  # 1: some measure failed on some model; the leaderboard is still written
        if s["returncode"] != 0:
            notes.append(f"{name} run exited with status {s['returncode']}: {s['stderr_tail'][-500:]}")
        checks.append(_check(f"leaderboard, {name} store", f"{s['seconds']:.1f} s", f"limit {limit:g} s",
                             s["seconds"] / limit, f"< {limit:g} s", ok and s["seconds"] < limit))
    details = [f"command: `{r['command']}` (a subprocess of this interpreter, from the repository root)",
               f"cold (empty store): {r['cold']['seconds']:.1f} s; {r['cold']['summary']}",
               f"warm (same command again): {r['warm']['seconds']:.1f} s; {r['warm']['summary']}"]
    return {"results": r, "checks": checks, "details": details, "notes": notes}


def section_uncertainty(quick: bool, args) -> dict:
    from .uncertainty import TARGETS_S, describe, run

    r = run(resamples=100 if quick else 1000, repeats=3, loop_resamples=3 if quick else 20)
    checks = []
    for name, x in r.items():
        target = TARGETS_S[name]
        checks.append(_check(f"{x['resamples']} joint test resamples, {x['models']} models, {x['repeats']} repeats",
                             f"vectorized {x['ours_s']:.3f} s", f"loop {x['loop_s']:.1f} s", x["speedup"],
                             f"< {target:g} s per measure and task, scores equal to 1e-12",
                             x["ours_s"] < target and x["max_abs_difference"] <= 1e-12))
    details = ["per measure and task: `intervals.score_draws` (CMI, tau, psi and robust sign-error of each of 3 repeats "
               "against every joint test resample of the gaps, the repeat draws, the intervals) and the paired "
               "difference from the best measure; the task's resamples and the best measure's draws are shared by "
               "all its measures and timed apart; loop: the single-vector scorers on each (resample, repeat), run "
               "on part of the resamples and scaled"]
    details += [describe(name, x) for name, x in r.items()]
    return {"results": r, "checks": checks, "details": details, "notes": []}


RUNNERS = {"cmi": section_cmi, "tfrecord": section_tfrecord, "activations": section_activations,
           "fragmentation": section_fragmentation, "leaderboard": section_leaderboard,
           "uncertainty": section_uncertainty}


def run_section(name: str, quick: bool, args) -> dict:
    start = time.perf_counter()
    try:
        out = RUNNERS[name](quick, args)
    except Exception as exc:  # one broken section must not lose the others
        out = {"results": None, "checks": [], "details": [], "notes": [f"{type(exc).__name__}: {exc}"],
               "traceback": traceback.format_exc(), "status": "error"}
    out["title"] = TITLES[name]
    out["seconds"] = time.perf_counter() - start
    if "status" not in out:
        verdicts = [c["pass"] for c in out["checks"] if c["pass"] is not None]
        out["status"] = "n/a" if not verdicts else ("pass" if all(verdicts) else "fail")
    return out


# -- report --------------------------------------------------------------------------------------------


def _finite(value):
    """JSON-safe: non-finite floats become null (the report stays strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _finite(value.item())
    return value


def _ratio(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}x" if value >= 100 else f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def _verdict(passed) -> str:
    return "n/a" if passed is None else ("**pass**" if passed else "**FAIL**")


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# pgdl-bench performance report",
        "",
        f"{report['created']}; `{report['command']}`" + ("; **quick mode** (smoke test, not a measurement)"
                                                         if report["quick"] else ""),
        "",
        f"Machine: {m['cpu_model']}, {m['cpu_count']} CPUs ({m['usable_cpus']} usable); torch {m['torch']} "
        f"({m['torch_threads']} threads), numpy {m['numpy']}, TensorFlow {m['tensorflow'] or 'not installed'}, "
        f"google-crc32c {m['google_crc32c'] or 'not installed'}, Python {m['python']}; load average "
        f"{report['load_before']} before, {report['load_after']} after; {report['seconds']:.0f} s in all.",
        "",
        "| section | check | ours | baseline | ratio | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in report["sections"].items():
        label = LABELS[name]
        if not s["checks"]:
            lines.append(f"| {label} | {s['status']} | | | | | {s['status']} |")
        for c in s["checks"]:
            ratio = (f"{c['ratio']:.2f} of the limit" if name == "leaderboard" and c["ratio"] is not None
                     else f"{c['ratio']:.2f}" if name == "fragmentation" and c["ratio"] is not None
                     else _ratio(c["ratio"]))
            lines.append(f"| {label} | {c['name']} | {c['ours']} | {c['baseline']} | {ratio} | {c['target']} | "
                         f"{_verdict(c['pass'])} |")
    overall = "all targets met" if report["passed"] else "some targets missed or sections failed"
    lines += ["", f"Overall: **{overall}**.", ""]
    for name, s in report["sections"].items():
        lines += [f"## {s['title']}", "", f"Status: **{s['status']}** ({s['seconds']:.1f} s).", ""]
        lines += [f"- {d}" for d in s["details"]]
        lines += [f"- note: {n}" for n in s["notes"]]
        lines.append("")
    return "\n".join(lines)


def run_suite(sections, quick: bool, args, command: str) -> dict:
    load_before = _load()
    start = time.perf_counter()
    machine = machine_info()
    results = {}
    for name in RUN_ORDER:
        if name in sections:
            print(f"[perf] {name} ...", file=sys.stderr, flush=True)
            results[name] = run_section(name, quick, args)
            print(f"[perf] {name}: {results[name]['status']} ({results[name]['seconds']:.1f} s)", file=sys.stderr,
                  flush=True)
    ordered = {}
    for name in SECTIONS:
        if name in results:
            ordered[name] = results[name]
        else:
            ordered[name] = {"title": TITLES[name], "status": "skipped", "seconds": 0.0, "results": None,
                             "checks": [], "details": [], "notes": ["skipped with --skip"]}
    passed = all(s["status"] not in ("fail", "error") for s in ordered.values())
    return _finite({
        "schema": "pgdl-bench-perf/1",
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "quick": quick,
        "machine": machine,
        "load_before": load_before,
        "load_after": _load(),
        "seconds": time.perf_counter() - start,
        "passed": passed,
        "sections": ordered,
    })


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.perf", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="perf_report", help="folder for perf_report.json and perf_report.md "
                        "(default: perf_report)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the suite, in seconds")
    parser.add_argument("--skip", nargs="+", action="extend", default=[], choices=SECTIONS, metavar="SECTION",
                        help=f"sections to leave out: {', '.join(SECTIONS)}")
    parser.add_argument("--task", action="append", default=[], metavar="PATH",
                        help="leaderboard section: these task folders instead of the default zoos (repeatable)")
    parser.add_argument("-m", "--measure", action="append", default=[],
                        help="leaderboard section: only these measures (repeatable; default: all, one with --quick)")
    args = parser.parse_args(argv)
    sections = [s for s in SECTIONS if s not in args.skip]
    command = "python -m scripts.perf " + " ".join(sys.argv[1:] if argv is None else argv)
    report = run_suite(sections, args.quick, args, command.strip())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (out / "perf_report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (out / "perf_report.md").write_text(text + "\n")
    print(text)
    print(f"[perf] wrote {out / 'perf_report.json'} and {out / 'perf_report.md'}", file=sys.stderr)
    return 0 if report["passed"] else 1
