"""The ``pgdl-bench`` command line (also ``python -m benchmark``).

Bad input gives one line on stderr naming the file, model or layer at fault and a non-zero exit:
2 for bad input (task folders, predictions, unknown measures), 1 for a measure that failed.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import sys
import time
from importlib import metadata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import measures as measure_registry
from task_loaders import TaskFormatError, load_task
from task_loaders.zoo import DEFAULT_ZOOS, RECIPES, get_recipe, zoo_cache_dir

from .executor import DEFAULT_BUDGET_S, LocalExecutor, make_executor
from .leaderboard import safe_filename
from .plugins import load_plugin
from .predict_files import read_predict, write_predict
from .runner import Failure, MeasureFailure, prepare, run_measures, stored_values
from .scoring import PredictionError, TaskArrays, evaluate
from .store import ResultStore
from .submission import submission_dir
from .zoo_builder import TRAIN_BUDGET_S, ZooBuildError, build_zoo, default_zoo_paths

EXIT_BAD_INPUT = 2
EXIT_MEASURE_FAILED = 1


def _load_plugins(args) -> tuple[list[str], list[str]]:
    """Load --plugin and --submission specs: (specs for the workers, measure names they provide)."""
    specs, provided = [], []
    for spec in getattr(args, "plugin", None) or []:
        specs.append(spec)
        names = load_plugin(spec)
        if not names:
            raise measure_registry.MeasureError(f"plugin {spec}: registers no measure (decorate a function with "
                                                "@measure(\"name\"), or name one: FILE.py:FUNCTION)")
        provided += names
    for folder in getattr(args, "submission", None) or []:
        spec = "submission:" + str(submission_dir(folder))
        specs.append(spec)
        provided += load_plugin(spec)
    return specs, list(dict.fromkeys(provided))


def _cmd_measures(args) -> int:
    _load_plugins(args)
    names = measure_registry.available()
    if args.json:
        out = {}
        for name in names:
            m = measure_registry.get(name)
            out[name] = {"description": m.description, "source": m.source, "sign": m.sign,
                         "family": measure_registry.family(m),
                         "version": m.version, "params": {k: repr(v) for k, v in m.params.items()}}
        print(json.dumps(out, indent=2))
        return 0
    width = max(len(n) for n in names)
    for name in names:
        m = measure_registry.get(name)
        print(f"{name:<{width}}  {m.description}")
        print(f"{'':<{width}}  family: {measure_registry.family(m)}; source: {m.source or 'no source'}")
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


def _task_path(path: str) -> str:
    """A task folder, or the name of an in-house zoo recipe (digits-bn, ...): built into the cache on first use."""
    if not Path(path).exists() and path in RECIPES:
        return str(build_zoo(path))
    return path


def _load_tasks(paths: list[str], reference: str | None, failures: list[str]) -> list:
    tasks = []
    seen = {}
    for path in paths:
        try:
            task = load_task(_task_path(path), reference)
        except TaskFormatError as exc:
            failures.append(str(exc))
            continue
        if task.name in seen:
            failures.append(f"{task.path}: task name '{task.name}' is also used by {seen[task.name]}")
            continue
        seen[task.name] = task.path
        tasks.append(task)
    return tasks


def _failure_lines(failures: list[Failure]) -> list[str]:
    """One line per distinct error, naming the measures and models it hit."""
    groups: dict[tuple[str, str], list[Failure]] = {}
    for f in failures:
        # the same error on many models differs only in the model named: group on the rest
        generic = re.sub(rf"\bmodel[ _]{re.escape(f.model_id)}\b", "model <id>", f.error or "")
        groups.setdefault((f.status, generic), []).append(f)
    lines = []
    for (status, error), items in groups.items():
        models = sorted({f"{f.task}/model_{f.model_id}" for f in items}, key=_natural)
        names = sorted({f.measure for f in items})
        shown = ", ".join(models[:6]) + (f" and {len(models) - 6} more" if len(models) > 6 else "")
        what = "timed out" if status == "timeout" else "failed"
        if len(items) == 1:
            error = items[0].error
        lines.append(f"{error} [{', '.join(names)} {what} on {shown}]")
    return lines


def _natural(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _executor(args):
    return make_executor(args.backend, args.workers, args.threads, args.budget, args.scheduler, args.device)


def _device(text: str) -> str:
    """``--device``: cpu, cuda, cuda:N or mps, checked against what this torch can use."""
    import torch

    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use cpu, cuda, cuda:N or mps")
    if text.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(text.split(":")[1]) if ":" in text else 0
        if index >= count:
            raise argparse.ArgumentTypeError(f"{text}: this machine has {count} CUDA device(s) usable by torch "
                                             f"{torch.__version__}")
    if text == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"mps: not available to torch {torch.__version__} here")
    return text


@dataclass
class _Computed:
    """What a run of measures over tasks left: read scores from ``store`` while it is open."""

    names: list[str]
    runs: list
    store: ResultStore
    report: object
    load_failures: list[str]


@contextmanager
def _computed(args):
    """Load plugins, measures and tasks, compute what the store lacks; yield with the store still open."""
    plugins, provided = _load_plugins(args)
    names = measure_registry.select(args.measure) if args.measure else (provided or measure_registry.available())
    overrides = _params(args.param or [], names)
    if args.reference and len(args.task) != 1:
        raise PredictionError("--reference applies to a single task")
    load_failures: list[str] = []
    paths = args.task or [str(p) for p in default_zoo_paths(progress=not args.quiet)]
    tasks = _load_tasks(paths, args.reference, load_failures)
    runs = [prepare(task, names, overrides) for task in tasks]
    with ResultStore(args.store) as store:
        report = run_measures(runs, store, _executor(args), fresh=args.fresh, retry_failed=args.retry_failed,
                              plugins=tuple(plugins), progress=not args.quiet, device=args.device)
        yield _Computed(names, runs, store, report, load_failures)


def _params(specs: list[str], names: list[str]) -> dict[str, dict]:
    """``--param MEASURE.KEY=VALUE`` settings: {measure: {key: value}}, checked against the measures' signatures.

    VALUE is read as a Python literal (3, 0.5, None, True, "max", (1, 2)), else taken as a string.
    """
    out: dict[str, dict] = {}
    for spec in specs:
        target, sep, text = spec.partition("=")
        name, dot, key = target.rpartition(".")
        if not sep or not dot or not name or not key:
            raise measure_registry.MeasureError(f"--param {spec!r}: write MEASURE.KEY=VALUE, e.g. silhouette.n=500")
        entry = measure_registry.get(name)
        if name not in names:
            raise measure_registry.MeasureError(f"--param {spec!r}: measure '{name}' is not among those scored")
        if key not in entry.params:
            known = ", ".join(entry.params) or "none"
            raise measure_registry.MeasureError(f"--param {spec!r}: measure '{name}' has no parameter {key!r} "
                                                f"(parameters: {known})")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        default = entry.params[key]
        kinds = {bool: (bool,), int: (int, float), float: (int, float), str: (str,)}.get(type(default))
        if kinds and value is not None and (not isinstance(value, kinds) or isinstance(value, bool) != (kinds == (bool,))):
            raise measure_registry.MeasureError(f"--param {spec!r}: measure '{name}' expects {key} like its default "
                                                f"{default!r}, got {value!r}")
        out.setdefault(name, {})[key] = value
    return out


def _exit_status(computed: _Computed) -> int:
    """Print one line per error; 2 for bad input, 1 for a failed measure, else 0."""
    report, load_failures = computed.report, computed.load_failures
    for line in load_failures + _failure_lines(report.failures):
        print(f"pgdl-bench: error: {line}", file=sys.stderr)
    if load_failures or any(f.status == "bad_input" for f in report.failures):
        return EXIT_BAD_INPUT
    return EXIT_MEASURE_FAILED if report.failures else 0


def _cmd_score(args) -> int:
    with _computed(args) as c:
        names, runs, store, report, load_failures = c.names, c.runs, c.store, c.report, c.load_failures
        out: dict = {"tasks": {}}
        rows = []
        written = False
        for run in runs:
            out["tasks"][run.task.name] = {}
            arrays = TaskArrays.from_task(run.task)
            for name in names:
                values = stored_values(store, run, name)
                if values is None:
                    continue
                path = write_predict(Path(args.out) / safe_filename(name) / f"{safe_filename(run.task.name)}.predict",
                                     values)
                written = True
                scores = evaluate(values, arrays, where=str(path))
                out["tasks"][run.task.name][name] = {**scores, "predictions": values, "predict_file": str(path)}
                rows.append((run.task.name, name, scores))
    if args.json:
        out["failures"] = [vars(f) for f in report.failures] + [{"error": e} for e in load_failures]
        out["computed"], out["reused"] = report.computed, report.reused
        print(json.dumps(out, indent=2))
    else:
        _print_table(rows)
        if written:
            print(f"\n.predict files written under {args.out}/<measure>/<task>.predict "
                  f"({report.computed} results computed, {report.reused} reused from {store.path})", file=sys.stderr)
    return _exit_status(c)


def _cmd_leaderboard(args) -> int:
    from .leaderboard import make_leaderboard

    start = time.monotonic()
    with _computed(args) as c:
        info = {}
        for name in c.names:
            m = measure_registry.get(name)
            info[name] = {"sign": m.sign, "source": m.source, "description": m.description}
        board, _ = make_leaderboard(c.runs, c.store, c.names, args.out, info)
    out = Path(args.out)
    scored = sum(1 for r in board["rows"] if not r["reference"] and r["mean_cmi_x100"] is not None)
    published = sum(1 for r in board["rows"] if r["reference"])
    print(f"leaderboard of {len(c.names)} measures ({scored} scored on every task) on {len(c.runs)} task(s)"
          + (f", with {published} published reference rows" if published else "")
          + f": {out / 'leaderboard.html'}, .md, .csv, .json; plots in {out / 'plots'}/; .predict files in "
          f"{out / 'predictions'}/<measure>/<task>.predict ({c.report.computed} results computed, "
          f"{c.report.reused} reused from {c.store.path}; {time.monotonic() - start:.1f} s)")
    return _exit_status(c)


def _cmd_evaluate(args) -> int:
    task = load_task(_task_path(args.task), args.reference)
    predictions = read_predict(args.predict_file)
    scores = evaluate(predictions, task, where=str(args.predict_file))
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        _print_table([(task.name, Path(args.predict_file).name, scores)])
    return 0


def _add_tasks_and_measures(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", nargs="*", help="PGDL task folder(s) or zoo recipe name(s) (default: the embedded zoos "
                   f"{', '.join(DEFAULT_ZOOS)}, built on first use)")
    p.add_argument("-m", "--measure", action="append", help="measure name, 'all', or 'family:NAME' (margins, "
                   "fragmentation, sparsity, clustering, norms, flatness, winners); repeatable; default: every "
                   "registered measure, or only the --plugin's")
    p.add_argument("--reference", help="folder holding model_configs.json, if apart from the task")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("running")
    g.add_argument("--store", help="SQLite results store (default: $PGDL_BENCH_HOME/results.sqlite, "
                   "else ~/.cache/pgdl-bench/results.sqlite)")
    g.add_argument("--fresh", action="store_true", help="recompute these measures even if the store has them")
    g.add_argument("--retry-failed", action="store_true", help="recompute stored failures and timeouts")
    g.add_argument("--backend", default="local", choices=["local", "serial", "dask"],
                   help="local process pool (default), serial (in this process, no budget), or dask")
    g.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.1:8786 (with --backend dask)")
    g.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    g.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: cores / workers)")
    g.add_argument("--device", type=_device, default="cpu",
                   help="where measures run: cpu (default), cuda (one worker per GPU when there are several), "
                   "cuda:N or mps")
    g.add_argument("--param", action="append", metavar="MEASURE.KEY=VALUE",
                   help="set a measure's parameter, e.g. silhouette.n=500 (repeatable; checked against the "
                   "measure's parameters; part of the stored result's key)")
    g.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S,
                   help=f"seconds allowed per model and measure (default: {DEFAULT_BUDGET_S:g}, the competition's)")
    _add_plugin_options(g)


def _add_plugin_options(g) -> None:
    g.add_argument("--plugin", action="append", metavar="SPEC",
                   help="measures from a file or module: path/to/file.py, file.py:function, package.module or "
                   "package.module:function (repeatable; without -m only its measures are scored)")
    g.add_argument("--submission", action="append", metavar="DIR",
                   help="a PGDL competition submission folder (complexity.py), run unchanged under TensorFlow "
                   "as the measure submission:<folder name> (repeatable; needs the [tf] extra)")


def _version() -> str:
    try:
        return metadata.version("pgdl-bench")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgdl-bench",
        description="Benchmark complexity measures at predicting generalization (NeurIPS 2020 PGDL style).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("measures", help="list the registered measures (installed plugins included)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_plugin_options(p)
    p.set_defaults(func=_cmd_measures)

    p = sub.add_parser("score", help="compute measures on every model of tasks and score them")
    _add_tasks_and_measures(p)
    p.add_argument("--out", default="predictions", help="where .predict files go (default: predictions)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_run_options(p)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("leaderboard", help="compute measures like score, then write a leaderboard: HTML, "
                       "Markdown, CSV, JSON, plots and .predict files")
    _add_tasks_and_measures(p)
    p.add_argument("--out", default="leaderboard", help="folder for leaderboard.{html,md,csv,json}, plots/ and "
                   "predictions/<measure>/<task>.predict (default: leaderboard)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_run_options(p)
    p.set_defaults(func=_cmd_leaderboard)

    p = sub.add_parser("evaluate", help="score an existing .predict file")
    p.add_argument("task", help="PGDL task folder, or a zoo recipe name such as digits-bn")
    p.add_argument("predict_file", help='JSON {"model_<id>": value, ...}')
    p.add_argument("--reference", help="folder holding model_configs.json, if apart from the task")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_evaluate)
    p = sub.add_parser("new-measure", help="write a measure plugin package, ready to pip install")
    p.add_argument("name", help="the measure's name (lower case, digits, underscores)")
    p.add_argument("--out", default=".", help="folder to write pgdl-measure-NAME/ in (default: here)")
    p.set_defaults(func=_cmd_new_measure)

    p = sub.add_parser("zoo", help="in-house model zoos: list recipes, build one")
    zoo = p.add_subparsers(dest="zoo_command", required=True)
    q = zoo.add_parser("list", help="the named recipes")
    q.set_defaults(func=_cmd_zoo_list)
    q = zoo.add_parser("build", help="train a zoo into a PGDL task folder (resumes where a killed build stopped)")
    q.add_argument("name", help="recipe name (see `pgdl-bench zoo list`)")
    q.add_argument("--out", help="task folder to write (default: the zoo cache, $PGDL_BENCH_HOME/zoos/NAME)")
    q.add_argument("--data", help="folder with the dataset files (Fashion-MNIST IDX, CIFAR-10 python batches)")
    q.add_argument("--fresh", action="store_true", help="delete what the folder holds and train from scratch")
    q.add_argument("--workers", type=int, default=None, help="models trained at once (default: one per core)")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_zoo_build)

    p = sub.add_parser("bn-study", help="per-layer sparsity and clustering of BatchNorm vs no-BatchNorm twins")
    p.add_argument("--recipe", default="fashion-cnn4-study", help="zoo recipe with a batchnorm x seed grid "
                   "(default: fashion-cnn4-study; built into the zoo cache on first use)")
    p.add_argument("--task", help="use this task folder instead (its grid must have 'batchnorm')")
    p.add_argument("--out", default="bn_study", help="folder for the table and plots (default: bn_study)")
    p.add_argument("--samples", type=int, default=None, help="training samples per model (default: 1000)")
    p.add_argument("--data", help="folder with the dataset files, if not in the default place")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_bn_study)
    return parser


def _cmd_new_measure(args) -> int:
    from .scaffold import new_measure

    root = new_measure(args.name, args.out)
    print(f"wrote {root}/ (pyproject.toml with the entry point, {root.name.replace('-', '_')}/__init__.py, "
          f"tests/, README.md)")
    print(f"next: pip install -e '{root}[test]' (into pgdl-bench's environment; [test] adds pytest) && "
          f"pgdl-bench measures | grep {args.name} && pgdl-bench score -m {args.name} && "
          f"python -m pytest {root / 'tests'}")
    return 0


def _cmd_bn_study(args) -> int:
    from .bn_study import run_study

    out = run_study(args.recipe, args.out, task_path=args.task, n=args.samples, progress=not args.quiet,
                    data=args.data)
    print((out / "summary.md").read_text())
    print(f"plots: {out / 'bn_study.png'}; per-model values: {out / 'per_model.csv'}")
    return 0


def _cmd_zoo_list(args) -> int:
    width = max(len(n) for n in RECIPES)
    for name, recipe in RECIPES.items():
        built = (zoo_cache_dir() / name / "model_configs.json").is_file()
        print(f"{name:<{width}}  {len(recipe.models()):>3} models  {'cached' if built else '      '}  {recipe.description}")
    return 0


def _cmd_zoo_build(args) -> int:
    recipe = get_recipe(args.name)
    start = time.monotonic()
    # one torch thread per worker: training is then deterministic whatever the number of workers
    executor = LocalExecutor(workers=args.workers, threads_per_worker=1, budget=TRAIN_BUDGET_S)
    out = build_zoo(recipe, args.out, executor, data=args.data, fresh=args.fresh, progress=not args.quiet)
    task = load_task(out)
    gaps = sorted(task.gaps())
    print(f"{recipe.name}: {len(gaps)} models in {out} ({time.monotonic() - start:.0f} s); generalization gap "
          f"min {gaps[0]:.4f}, median {gaps[len(gaps) // 2]:.4f}, max {gaps[-1]:.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TaskFormatError, PredictionError, measure_registry.MeasureError, ValueError) as exc:
        print(f"pgdl-bench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (MeasureFailure, ZooBuildError) as exc:
        print(f"pgdl-bench: error: {exc}", file=sys.stderr)
        return EXIT_MEASURE_FAILED
    except KeyboardInterrupt:
        print("pgdl-bench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pgdl-bench measures | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit flush must not fail again
        return 141


if __name__ == "__main__":
    sys.exit(main())
