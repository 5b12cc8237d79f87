"""The ``pgdl-bench`` command line (also ``python -m benchmark``).

Bad input gives one line on stderr naming the file, model or layer at fault and a non-zero exit:
2 for bad input (task folders, predictions, unknown measures), 1 for a measure that failed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import measures as measure_registry
from task_loaders import TaskFormatError, load_task

from .predict_files import read_predict, write_predict
from .runner import MeasureFailure, score_task
from .scoring import PredictionError, TaskArrays, evaluate

EXIT_BAD_INPUT = 2
EXIT_MEASURE_FAILED = 1


def _cmd_measures(args) -> int:
    names = measure_registry.available()
    if args.json:
        out = {}
        for name in names:
            m = measure_registry.get(name)
            out[name] = {"description": m.description, "source": m.source, "sign": m.sign,
                         "version": m.version, "params": {k: repr(v) for k, v in m.params.items()}}
        print(json.dumps(out, indent=2))
        return 0
    width = max(len(n) for n in names)
    for name in names:
        m = measure_registry.get(name)
        print(f"{name:<{width}}  {m.description}")
        print(f"{'':<{width}}  source: {m.source}")
    return 0


def _fmt(value: float, scale: float = 1.0) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value * scale:.2f}"


def _print_table(rows: list[tuple[str, str, dict]]) -> None:
    if not rows:
        return
    tw = max(4, *(len(r[0]) for r in rows))
    mw = max(7, *(len(r[1]) for r in rows))
    print(f"{'task':<{tw}}  {'measure':<{mw}}  {'CMI x100':>8}  {'tau':>6}  {'psi':>6}  worst conditioning pair")
    for task, name, scores in rows:
        worst = min(scores["conditions"], key=lambda c: scores["conditions"][c]) if scores["conditions"] else ""
        print(
            f"{task:<{tw}}  {name:<{mw}}  {_fmt(scores['cmi'], 100):>8}  {_fmt(scores['kendall_tau']):>6}  "
            f"{_fmt(scores['granulated_kendall']['psi']):>6}  {worst}"
        )


def _cmd_score(args) -> int:
    names = args.measure or measure_registry.available()
    for name in names:
        measure_registry.get(name)
    if args.reference and len(args.task) != 1:
        raise PredictionError("--reference applies to a single task")
    tasks = [load_task(path, args.reference) for path in args.task]
    seen = {}
    for task in tasks:
        if task.name in seen:
            raise TaskFormatError(f"{task.path}: task name '{task.name}' is also used by {seen[task.name]}")
        seen[task.name] = task.path
    out: dict = {"tasks": {}}
    rows = []
    for task in tasks:
        values = score_task(task, names, progress=not args.quiet)
        arrays = TaskArrays.from_task(task)
        out["tasks"][task.name] = {}
        for name in names:
            path = write_predict(Path(args.out) / name / f"{task.name}.predict", values[name])
            scores = evaluate(values[name], arrays, where=str(path))
            out["tasks"][task.name][name] = {**scores, "predictions": values[name], "predict_file": str(path)}
            rows.append((task.name, name, scores))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print_table(rows)
        print(f"\n.predict files written under {args.out}/<measure>/<task>.predict", file=sys.stderr)
    return 0


def _cmd_evaluate(args) -> int:
    task = load_task(args.task, args.reference)
    predictions = read_predict(args.predict_file)
    scores = evaluate(predictions, task, where=str(args.predict_file))
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        _print_table([(task.name, Path(args.predict_file).name, scores)])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgdl-bench",
        description="Benchmark complexity measures at predicting generalization (NeurIPS 2020 PGDL style).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("measures", help="list the registered measures")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_measures)

    p = sub.add_parser("score", help="compute measures on every model of tasks and score them")
    p.add_argument("task", nargs="+", help="PGDL task folder(s)")
    p.add_argument("-m", "--measure", action="append", help="measure name (repeatable; default: every registered measure)")
    p.add_argument("--reference", help="folder holding model_configs.json, if apart from the task")
    p.add_argument("--out", default="predictions", help="where .predict files go (default: predictions)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("evaluate", help="score an existing .predict file")
    p.add_argument("task", help="PGDL task folder")
    p.add_argument("predict_file", help='JSON {"model_<id>": value, ...}')
    p.add_argument("--reference", help="folder holding model_configs.json, if apart from the task")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TaskFormatError, PredictionError, measure_registry.MeasureError) as exc:
        print(f"pgdl-bench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MeasureFailure as exc:
        print(f"pgdl-bench: error: {exc}", file=sys.stderr)
        return EXIT_MEASURE_FAILED
    except KeyboardInterrupt:
        print("pgdl-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
