"""Seconds per model for every measure on a PGDL-task-1-sized VGG, and the docs' measure tables (docs/measures.md, docs/reports/speed.md).

    python -m scripts.perf.measure_times [-m NAME ...] [--threads 1] [--out DIR] [--cmi SCORE.json ...]

The network is ``vgg((32, 32, 3), 10, width=64, depth=3)``: PGDL task 1's shape (CIFAR-10 input,
three blocks of two 3x3 convs with 64, 128 and 256 filters, a 256-unit dense layer), 1.3 M
parameters, random (Keras-default) weights, on random CIFAR-sized training data (``--train``
images, default 2000) labelled by the network itself (see ``task1_view``), on ``--threads`` torch
threads (1 by default: the competition's per-model budget was 300 s on one CPU).

The protocol is a ``score`` run's: its worker computes every measure of a model on one
``ModelView``, whose cached activations of the shared sample (one forward pass, every hidden layer
and the logits) serve every measure that reads them. So one view is made, that pass is timed once
(``shared_pass`` in ``measure_times.json``), and then each measure runs once at its defaults on the
same view (its own forward passes included; entries timed so have ``"view": "shared"``; entries
without it were timed on a fresh view of their own, the pass included). The whole catalogue per
model is the pass plus the sum of the measures.

With ``--cmi`` (the output of ``pgdl-bench score --json``, one file or several), the markdown table
also has each measure's CMI x 100 on every task in those files. ``--out DIR`` writes
``measure_times.json`` and ``measures.md``; with ``-m`` (or ``--times FILE``: the timings of an
earlier run, not timed again) it updates only those measures' entries of an existing
``measure_times.json``. ``--before OLD.json --readme docs/reports/speed.md`` rewrites that page's
baseline/measured table (between ``<!-- measure-times -->`` and ``<!-- /measure-times -->``) from OLD.json
and the current ``measure_times.json``: the total per model and the slowest measures. The seconds
are the process's CPU seconds where recorded (``cpu_seconds``; on a contended machine the wall time
grows with the other work, the CPU time much less), else wall seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

import measures
from measures import ModelView
from task_loaders import build_network
from task_loaders.training import keras_initialize
from task_loaders.architectures import vgg

TASK1_VGG = {"width": 64, "depth": 3}
# The key of measure_times.json for the forward pass that the measures of one model share.
SHARED_PASS = "shared_pass"


def task1_view(train: int = 2000, seed: int = 0) -> ModelView:
    """A fresh view of the task-1-sized VGG (seeded weights and data: every call is the same model).

    The labels are the network's own predictions, after its last Dense layer is standardized so
    that every class is predicted about equally often: the model fits its training set perfectly,
    as PGDL's models nearly do, so measures that search for the perturbation that breaks training
    accuracy (sharpness, PAC-Bayes sigma) do their full search.
    """
    network = build_network(vgg((32, 32, 3), 10, **TASK1_VGG), (32, 32, 3))
    keras_initialize(network, torch.Generator().manual_seed(seed))
    initial = build_network(vgg((32, 32, 3), 10, **TASK1_VGG), (32, 32, 3))
    keras_initialize(initial, torch.Generator().manual_seed(seed + 1))
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(train, 3, 32, 32, generator=gen)
    with torch.inference_mode():
        logits = torch.cat([network(x[i : i + 500]) for i in range(0, train, 500)])
        mean, std = logits.mean(0), logits.std(0)
        last = list(network.children())[-1].linear
        last.weight.div_(std[:, None])
        last.bias.sub_(mean).div_(std)
        y = torch.cat([network(x[i : i + 500]) for i in range(0, train, 500)]).argmax(1)
    return ModelView(network, (x, y), initial_network=initial, num_classes=10, model_id="vgg-task1",
                     task_name="perf-task1")


def _timed(fn) -> dict:
    """{"seconds": wall s, "cpu_seconds": process CPU s, "value": float(fn()), "error": None or the error}."""
    cpu = time.process_time()
    start = time.perf_counter()
    try:
        value, error = float(fn()), None
    except Exception as exc:  # report, keep timing the others
        value, error = math.nan, f"{type(exc).__name__}: {exc}"
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "value": value,
            "error": error}


def shared_pass(view: ModelView) -> float:
    """Run the forward pass that ``view.activations`` shares (every hidden layer and the logits of the
    shared sample); returns the number of passes it took (1 when everything fits the cache)."""
    for layer in [*view.hidden_layers, "logits"]:
        view.activations(layer)
    return float(view.forward_passes)


def time_measures(names: list[str], train: int = 2000, progress=None) -> tuple[dict, dict[str, dict]]:
    """Timings as a ``score`` run's worker spends them on one model: (the shared pass, {name: timing}),
    each timing {"seconds": wall s, "cpu_seconds": process CPU s, "value": v, "error": None or the error}.

    A worker computes every pending measure of a model on ONE ``ModelView``
    (``benchmark.running.runner.measure_job``), whose cached activations (one forward pass over the shared
    sample, every hidden layer and the logits) serve all the measures that read them. So here: one
    view, that pass timed once (its value: the number of passes it took), then each measure on the
    same view, its own work only (its own forward passes included). The whole catalogue costs the
    pass plus the sum of the measures' entries.

    On a machine shared with other work the wall time grows with the contention; the process CPU
    time much less (on one torch thread it is the computation's own time).
    """
    view = task1_view(train)
    shared = _timed(lambda: shared_pass(view))
    if progress:
        progress(SHARED_PASS, shared)
    out = {}
    for name in names:
        entry = measures.get(name)
        out[name] = _timed(lambda: entry(view))
        if progress:
            progress(name, out[name])
    return shared, out


def cmi_columns(score_files: list[str]) -> dict[str, dict[str, float]]:
    """{task: {measure: CMI}} from ``pgdl-bench score --json`` outputs."""
    columns: dict[str, dict[str, float]] = {}
    for path in score_files:
        data = json.loads(Path(path).read_text())
        for task, by_measure in data.get("tasks", {}).items():
            columns.setdefault(task, {}).update({m: s["cmi"] for m, s in by_measure.items()})
    return columns


def markdown_table(times: dict[str, dict], columns: dict[str, dict[str, float]], shared: dict | None = None) -> str:
    """Markdown: each measure's sign, CMI x 100 per task of ``columns`` and seconds; ``shared``: the
    timing of the shared activations pass, as a last row."""
    tasks = sorted(columns)
    head = ["measure", "sign", *[f"CMI x100 {t}" for t in tasks], "s / model (task-1 VGG, 1 thread; CPU s where recorded)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = sorted(set(times) | {m for col in columns.values() for m in col})
    for name in names:
        sign = f"{measures.get(name).sign:+d}" if name in measures.available() else "?"
        cells = [f"`{name}`", sign]
        for task in tasks:
            v = columns[task].get(name)
            cells.append("" if v is None else ("nan" if not np.isfinite(v) else f"{100 * v:.2f}"))
        t = times.get(name)
        cells.append("" if t is None else (f"{seconds(t):.1f}" if t["error"] is None else "failed"))
        lines.append("| " + " | ".join(cells) + " |")
    if shared is not None:
        lines.append("| " + " | ".join(["(the forward pass the measures of a model share)", "", *[""] * len(tasks),
                                        f"{seconds(shared):.1f}"]) + " |")
    return "\n".join(lines) + "\n"


def seconds(entry: dict) -> float:
    """A timing entry's seconds: its CPU seconds where recorded, else its wall seconds."""
    return float(entry.get("cpu_seconds", entry["seconds"]))


def total_seconds(record: dict) -> float:
    """A measure_times.json record's seconds per model for the whole catalogue: every measure's
    entry, plus the shared activations pass where the record has one (see ``time_measures``)."""
    shared = record.get(SHARED_PASS)
    return sum(map(seconds, record["measures"].values())) + (seconds(shared) if shared else 0.0)


def comparison_table(before: dict, after: dict, slowest: int = 5) -> str:
    """Markdown: total seconds per model over the catalogue, and the slowest measures, baseline and measured."""
    old, new = before["measures"], after["measures"]
    names = sorted(old, key=lambda n: -seconds(old[n]))[:slowest]
    names += [n for n in sorted(new, key=lambda n: -seconds(new[n]))[:slowest] if n not in names]
    lines = ["| per model, task-1 VGG, 1 thread | baseline, a view per measure (s) | measured (s) |", "|---|---:|---:|",
             f"| whole catalogue ({len(new)} measures) | {total_seconds(before):.1f} | {total_seconds(after):.1f} |"]
    for name in names:
        cell = lambda table: f"{seconds(table[name]):.1f}" if name in table else ""
        lines.append(f"| `{name}` | {cell(old)} | {cell(new)} |")
    if SHARED_PASS in after:
        earlier = f"{seconds(before[SHARED_PASS]):.1f}" if SHARED_PASS in before else ""
        lines.append(f"| the forward pass the measures of a model share (in the total) | {earlier} | "
                     f"{seconds(after[SHARED_PASS]):.1f} |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str, tag: str = "measure-times") -> str:
    start, end = f"<!-- {tag} -->", f"<!-- /{tag} -->"
    if start not in text or end not in text:
        raise ValueError(f"the page has no {start} ... {end} block to fill")
    head, rest = text.split(start, 1)
    return head + start + "\n" + block + end + rest.split(end, 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--measure", action="append", help="a measure (repeatable; default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train", type=int, default=2000, help="random training images (default 2000)")
    parser.add_argument("--cmi", action="append", default=[], help="pgdl-bench score --json output (repeatable)")
    parser.add_argument("--out", help="write measure_times.json and measures.md here")
    parser.add_argument("--no-time", action="store_true", help="only build the table from --cmi files")
    parser.add_argument("--times", help="take the timings from this measure_times.json (a run made before, e.g. "
                        "on a quieter machine) instead of timing; with --out they update its entries")
    parser.add_argument("--note", help="a line to add to the notes of measure_times.json (how it was measured)")
    parser.add_argument("--before", help="an earlier measure_times.json, for --readme's before/after table")
    parser.add_argument("--readme", help="rewrite the baseline/measured table of this Markdown page, e.g. docs/reports/speed.md (needs --before and --out)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.measure or measures.available()
    for name in names:
        measures.get(name)

    def show(name, r):
        status = (f"{r['seconds']:8.2f} s ({r['cpu_seconds']:.2f} s CPU)  value {r['value']:.6g}" if r["error"] is None
                  else f"FAILED {r['error']}")
        print(f"{name:24s} {status}", flush=True)

    shared = None
    if args.times:
        earlier = json.loads(Path(args.times).read_text())
        times = {n: t for n, t in earlier["measures"].items() if not args.measure or n in args.measure}
        shared = earlier.get(SHARED_PASS)
    elif args.no_time:
        times = {}
    else:
        shared, times = time_measures(names, args.train, progress=show)
        for entry in times.values():
            entry["view"] = "shared"  # timed after the shared pass, on the view it filled
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "measure_times.json"
        if times:
            record = {"network": "vgg((32, 32, 3), 10, width=64, depth=3)", "threads": args.threads,
                      "train_images": args.train, "torch": torch.__version__, "measures": times}
            if (args.measure or args.times) and path.is_file():  # re-timed some measures: keep the others' entries
                record = json.loads(path.read_text())
                record["measures"].update(times)
            if shared is not None:
                record[SHARED_PASS] = shared
            if args.note:
                record["notes"] = record.get("notes", []) + [args.note]
            path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        if path.is_file():
            record = json.loads(path.read_text())
            times, shared = record["measures"], record.get(SHARED_PASS)
        (out / "measures.md").write_text(markdown_table(times, cmi_columns(args.cmi), shared))
        if args.readme and args.before:
            readme = Path(args.readme)
            readme.write_text(replace_block(readme.read_text(), comparison_table(json.loads(Path(args.before).read_text()),
                                                                                 json.loads(path.read_text()))))
    print(markdown_table(times, cmi_columns(args.cmi), shared))
    return 1 if any(r["error"] for r in times.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
