"""The ``pgdl-bench`` command line (also ``python -m benchmark``).

Bad input gives one line on stderr naming the file, model or layer at fault and a non-zero exit:
2 for bad input (task folders, predictions, unknown measures), 1 for a measure that failed.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import re
import signal
import sys
import threading
import time
import traceback
from importlib import metadata
from pathlib import Path

import measures as measure_registry
from measures.code_identity import code_version
from task_loaders import TaskFormatError, UsageError, load_task
from task_loaders.fingerprint import content_fingerprint, short_fingerprint
from task_loaders.pinned import PINNED_FINGERPRINTS, pinned_zoo
from task_loaders.replicates import read_replicate_set
from task_loaders.zoo import DEFAULT_ZOOS, RECIPES, get_recipe, zoo_cache_dir

from .data.pgdl_data import DataError
from .data.predict_files import read_predict
from .data.zoo_builder import TRAIN_BUDGET_S, ZooBuildError, build_replicates, build_zoo
from .leaderboard import PUBLISHED_NOTE, make_leaderboard
from .leaderboard.text import pm_text, versus
from .scores.verdicts import compare_pairs
from .noise_ceiling import REPLICATE_ROW, SPLIT_HALF_ROW
from .pipeline import DEFAULT_REPEATS, check_output_folder, computed as _computed, load_plugins as _load_plugins
from .pipeline import reference_rows as _reference_rows, score_computed, task_path as _task_path
from .running.executor import DEFAULT_BUDGET_S, LocalExecutor
from .running.provenance import provenance, task_provenance
from .running.runner import Failure, MeasureFailure
from .running.store import ResultStore, StoreError, task_fingerprint
from .scores.scoring import PredictionError, evaluate
from .studies.cli import add_study_parsers
from .studies.common import StudyError

# The table's legend: intervals, comparisons, orientation and the ceiling, as computed.
LEGEND = ("CMI x100, tau, psi: the mean over the K repeats of each stochastic measure (deterministic ones once; "
          "--repeats {repeats}) "
          "± half the width of a 95% interval over the gaps' joint test-set resamples and the repeats (centred "
          "bootstrap; the expected score at this test-set size); tau and psi times the measure's sign, so positive "
          "means it ranks the gaps the way it declares.\n"
          "vs best: a paired bootstrap test against the task's best measure on the same resamples and repeats, "
          "Holm-corrected over the task's measures; 'not separated' means these data cannot tell the two apart "
          "(too little power), not that they are equal.\n"
          "robust: worst-case sign-error over hyperparameters (Dziugaite et al. 2020; 0 best, 0.5 a coin flip); the "
          "gap noise ceiling below is how well the gaps measured on half the test set predict the other half's.")
EXIT_BAD_INPUT = 2
EXIT_MEASURE_FAILED = 1
EXIT_INTERNAL_ERROR = 3


def _cmd_measures(args) -> int:
    _load_plugins(args)
    names = measure_registry.available()
    if args.json:
        out = {}
        for name in names:
            m = measure_registry.get(name)
            out[name] = {"description": m.description, "source": m.source, "sign": m.sign,
                         "family": measure_registry.family(m),
                         "version": m.version, "params": {k: repr(v) for k, v in m.params.items()},
                         "stochastic": m.stochastic}
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


def _pm(scores: dict, key: str, value: float, scale: float = 1.0) -> str:
    """``text.pm_text`` of a score and its interval (none for ``evaluate``, which has no repeats or resamples)."""
    if "intervals" not in scores:
        return _fmt(value, scale)
    return pm_text(value, scores["intervals"].get(key), scale=scale)


def _print_table(rows: list[tuple[str, str, dict]]) -> None:
    """One line per (task, measure): CMI x 100, tau, psi (each +- the half-width of its 95% interval over
    repeats, when scored with repeats), robust sign-error, the paired comparison with the task's best
    measure, and the worst conditioning pair. tau and psi are shown in the measure's declared orientation
    (times its ``sign``): positive when the measure ranks the gaps the way it says it does."""
    if not rows:
        return
    cells = []
    for task, name, scores in rows:
        worst = min(scores["conditions"], key=lambda c: scores["conditions"][c]) if scores["conditions"] else ""
        robust = scores["robust_sign_error"]["robust"]
        sign = scores.get("sign", 1)
        cells.append((task, name, str(scores.get("repeats", "")), _pm(scores, "cmi", scores["cmi"], 100),
                      _pm(scores, "kendall_tau", scores["kendall_tau"], sign),
                      _pm(scores, "psi", scores["granulated_kendall"]["psi"], sign),
                      _fmt(robust) if robust is not None else "nan",
                      versus(scores.get("comparison_with_best"), name), worst))
    heads = ("task", "measure", "K", "CMI x100", "sign*tau", "sign*psi", "robust", "vs best", "worst conditioning pair")
    right = (False, False, True, True, True, True, True, False, False)
    if not any(c[7] for c in cells):  # no comparison (evaluate): no column
        heads, right, cells = heads[:7] + heads[8:], right[:7] + right[8:], [c[:7] + c[8:] for c in cells]
    if not any(c[2] for c in cells):  # no repeats (evaluate): no column
        heads, right, cells = heads[:2] + heads[3:], right[:2] + right[3:], [c[:2] + c[3:] for c in cells]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]

    def line(values):
        return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right)).rstrip()

    print(line(heads))
    for c in cells:
        print(line(c))


def _print_pairs(pairs: list[dict]) -> None:
    """``--compare``: one line per pair and task."""
    if pairs:
        print("\ncompared (CMI x100 of A minus B, 95% interval, Holm-corrected p):")
    for r in pairs:
        verdict = f"{r['a'] if r['difference'] > 0 else r['b']} better" if r["separated"] else "not separated"
        print(f"  {r['task']}: {r['a']} - {r['b']} = {_fmt(r['difference'], 100)} "
              f"[{_fmt(r['interval'][0], 100)}, {_fmt(r['interval'][1], 100)}], p = {r['p_holm']:.3f}: {verdict}")


def _print_reference_rows(ceilings: dict, replicate_sets: dict) -> None:
    """The noise-ceiling rows: how well the gaps predict themselves (not measures)."""
    rows = [(task, SPLIT_HALF_ROW, c) for task, c in ceilings.items()]
    rows += [(name, REPLICATE_ROW, e["replicate_ceiling"]) for name, e in replicate_sets.items()
             if "replicate_ceiling" in e]
    if not rows:
        return
    tw = max(4, *(len(r[0]) for r in rows))
    rw = max(len(r[1]) for r in rows)
    print(f"\n{'task':<{tw}}  {'reference row':<{rw}}  {'CMI x100':>8}  {'tau':>6}  over")
    for task, row, c in rows:
        over = f"{c['splits']} random halvings of {c['test_samples']} test samples" if row == SPLIT_HALF_ROW \
            else f"{c['pairs']} ordered pairs of {c['replicates']} replicates"
        print(f"{task:<{tw}}  {row:<{rw}}  {_fmt(c['cmi'], 100):>8}  {_fmt(c['kendall_tau']):>6}  {over} "
              f"(sd: CMI x100 {_fmt(c['cmi_sd'], 100)}, tau {_fmt(c['kendall_tau_sd'])})")


def _print_replicate_summaries(replicate_sets: dict) -> None:
    """Per replicate set and measure: mean and standard deviation over replicates of CMI x 100, tau, psi."""
    for name, entry in replicate_sets.items():
        if not entry.get("measures"):
            continue
        print(f"\n{name}: {len(entry['members'])} replicates (training seeds {', '.join(map(str, entry['seeds']))}); "
              "mean and standard deviation over replicates")
        mw = max(7, *(len(m) for m in entry["measures"]))
        print(f"{'measure':<{mw}}  {'CMI x100':>8}  {'sd':>6}  {'tau':>6}  {'sd':>5}  {'psi':>6}  {'sd':>5}  "
              "CMI x100 per replicate")
        for measure, s in entry["measures"].items():
            per = " ".join(_fmt(v, 100) for v in s["cmi"]["per_replicate"])
            print(f"{measure:<{mw}}  {_fmt(s['cmi']['mean'], 100):>8}  {_fmt(s['cmi']['sd'], 100):>6}  "
                  f"{_fmt(s['kendall_tau']['mean']):>6}  {_fmt(s['kendall_tau']['sd']):>5}  "
                  f"{_fmt(s['psi']['mean']):>6}  {_fmt(s['psi']['sd']):>5}  {per}")


def _print_fingerprints(tasks: dict) -> None:
    """One line per task: its fingerprint, and for a pinned zoo whether it is the recorded one."""
    if not tasks:
        return
    print()
    width = max(len(t) for t in tasks)
    for name, info in tasks.items():
        if "pinned" in info:
            note = ("pinned zoo, as recorded" if info["matches_pinned"]
                    else "pinned zoo, MODIFIED: not the recorded files")
        elif "same_content_as_pinned" in info:
            note = f"in-house zoo, content: the same files as the pinned {info['same_content_as_pinned']}"
        elif (Path(info["path"]) / "zoo.json").is_file():
            note = "in-house zoo, content"
        else:
            note = "file sizes and times, not content"
        print(f"{name:<{width}}  fingerprint {short_fingerprint(info['fingerprint'])} ({note})")


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
        what = {"timeout": "timed out", "lost": "lost"}.get(status, "failed")
        if len(items) == 1:
            error = items[0].error
        replayed = " (stored by an earlier run; add --retry-failed to compute it again)" if any(
            f.replayed for f in items) else ""
        lines.append(f"{error} [{', '.join(names)} {what} on {shown}]{replayed}")
    return lines


def _stale_line(stale: list[tuple[str, str]]) -> str | None:
    """One line saying which stored results were made by other code, and are being recomputed."""
    if not stale:
        return None
    names = sorted({m for _, m in stale})
    tasks = sorted({t for t, _ in stale}, key=_natural)
    return (f"stored results of {', '.join(names)} on {', '.join(tasks)} were made by other code "
            "(an edited measure or another package version): recomputed with the current code")


def _natural(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


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


def _exit_status(computed) -> int:
    """Print one line per error; 2 for bad input, 1 for a failed measure, else 0."""
    report, load_failures = computed.report, computed.load_failures
    stale = _stale_line(report.stale)
    if stale:
        print(f"pgdl-bench: note: {stale}", file=sys.stderr)
    for line in load_failures + _failure_lines(report.failures):
        print(f"pgdl-bench: error: {line}", file=sys.stderr)
    if load_failures or any(f.status == "bad_input" for f in report.failures):
        return EXIT_BAD_INPUT
    return EXIT_MEASURE_FAILED if report.failures else 0


def _cmd_score(args) -> int:
    check_output_folder(args.out)
    pairs = [tuple(p) for p in args.compare or []]
    for a, b in pairs:
        for name in (a, b):
            measure_registry.get(name)  # an unknown name is refused before any work
    if pairs and not args.measure:
        args.measure = list(dict.fromkeys(n for p in pairs for n in p))
    with _computed(args) as c:
        out, rows, written = score_computed(c, args.out, args.repeats)
        if pairs:
            out["comparisons"] = compare_pairs(out["tasks"], pairs)
        report, load_failures, store_path = c.report, c.load_failures, c.store.path
    ceilings, replicate_sets = out["noise_ceiling"], out["replicate_sets"]
    if args.json:
        out["failures"] = [vars(f) for f in report.failures] + [{"error": e} for e in load_failures]
        out["computed"], out["reused"] = report.computed, report.reused
        print(json.dumps(out, indent=2))
    else:
        _print_table(rows)
        _print_pairs(out.get("comparisons", []))
        _print_reference_rows(ceilings, replicate_sets)
        _print_replicate_summaries(replicate_sets)
        _print_fingerprints(out["provenance"]["tasks"])
        if written:
            print("\n" + LEGEND.format(repeats=args.repeats) + "\n"
                  f".predict files written under {args.out}/<measure>/<task>.predict (repeat k >= 1 in "
                  f"<measure>/repeat-<k>/; {report.computed} results computed, {report.reused} reused from "
                  f"{store_path})", file=sys.stderr)
    return _exit_status(c)


def _suite_tasks(args) -> None:
    """``--suite pgdl``: the leaderboard's tasks are every PGDL task under ``--root``, in the competition's order."""
    from .data.pgdl_data import default_data_dir, find_tasks

    if args.suite is None:
        if args.root:
            raise PredictionError("--root applies to --suite pgdl")
        return
    if args.task:
        raise PredictionError("--suite pgdl finds its tasks under --root; give no TASK folders with it")
    root = Path(args.root) if args.root else default_data_dir()
    tasks = find_tasks(root)
    if not tasks:
        raise PredictionError(f"{root}: no PGDL task folders found; download them with "
                              f"`pgdl-bench data pgdl all --out {root}`")
    args.task = [str(t) for t in tasks]
    if not args.quiet:
        print(f"PGDL tasks under {root}, in the competition's order: " + ", ".join(t.name for t in tasks),
              file=sys.stderr)


def _print_suite(board: dict) -> None:
    """The competition's view: per measure, each task's CMI x 100 and the task average, best first; then the
    published rows of the tasks recognized as official."""
    tasks = [t["name"] for t in board["tasks"]]
    rows = [r for r in board["rows"] if not r["reference"]] + [r for r in board["rows"] if r["reference"]]
    labels = [r["measure"][:48] + (" [published]" if r["reference"] else "") for r in rows]
    width = max(len("measure"), *map(len, labels))
    print(f"{'measure':<{width}}  " + "  ".join(f"{t:>10}" for t in tasks) + "  task average (CMI x100)")
    for label, row in zip(labels, rows):
        cells = [row["tasks"][t]["cmi_x100"] for t in tasks]
        average = row["mean_cmi_x100"]
        missing = "-" if row["reference"] else "not scored on every task"
        print(f"{label:<{width}}  " + "  ".join(f"{'-' if v is None else f'{v:.2f}':>10}" for v in cells)
              + f"  {missing if average is None else f'{average:.2f}'}")


def _cmd_leaderboard(args) -> int:
    start = time.monotonic()
    check_output_folder(args.out)
    _suite_tasks(args)
    with _computed(args) as c:
        info = {}
        for name in c.names:
            m = measure_registry.get(name)
            info[name] = {"sign": m.sign, "source": m.source, "description": m.description,
                          "stochastic": m.stochastic}
        ceilings, replicate_sets = _reference_rows(c)
        board, _ = make_leaderboard(c.runs, c.store, c.names, args.out, info, ceilings=ceilings,
                                    provenance=c.provenance(), replicate_sets=replicate_sets)
    out = Path(args.out)
    if args.suite:
        _print_suite(board)
    scored = sum(1 for r in board["rows"] if not r["reference"] and r["mean_cmi_x100"] is not None)
    published = sum(1 for r in board["rows"] if r["reference"] and r["origin"] == PUBLISHED_NOTE)
    print(f"leaderboard of {len(c.names)} measures ({scored} scored on every task) on {len(c.runs)} task(s)"
          + (f", with {published} published reference rows" if published else "")
          + f": {out / 'leaderboard.html'}, .md, .csv, .json; plots in {out / 'plots'}/; .predict files in "
          f"{out / 'predictions'}/<measure>/<task>.predict ({c.report.computed} results computed, "
          f"{c.report.reused} reused from {c.store.path}; {time.monotonic() - start:.1f} s)")
    _print_fingerprints(board.get("provenance", {}).get("tasks", {}))
    return _exit_status(c)


def _cmd_evaluate(args) -> int:
    task = load_task(_task_path(args.task), args.reference, models=False)  # scoring needs model_configs.json only
    predictions = read_predict(args.predict_file)
    scores = evaluate(predictions, task, where=str(args.predict_file), sign=args.sign)
    if args.json:
        fingerprint = task_fingerprint(task)
        print(json.dumps({**scores, "provenance": provenance({task.name: task_provenance(task, fingerprint)})},
                         indent=2))
    else:
        _print_table([(task.name, Path(args.predict_file).name, scores)])
    return 0


def _seconds(text: str) -> float:
    """A time budget: a positive finite number of seconds (0, negatives, nan and inf are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number of seconds, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command line."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"pgdl-bench: error: {message} (see {self.prog} --help)\n")


def _add_tasks_and_measures(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", nargs="*", help="PGDL task folder(s), replicate sets or zoo name(s) (default: the "
                   f"embedded zoos {', '.join(DEFAULT_ZOOS)}, pinned in the package)")
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
    g.add_argument("--repeats", type=_repeats, default=DEFAULT_REPEATS, metavar="K",
                   help="run each stochastic measure with K independent seeds (deterministic ones once), or 'auto' "
                   "(default): repeats by need, 2 to 6 per measure until its mean CMI's standard error is below "
                   "0.02 with 90%% confidence; the count used is printed per measure")
    g.add_argument("--device", type=_device, default="cpu",
                   help="where measures run: cpu (default), cuda (one worker per GPU when there are several), "
                   "cuda:N or mps")
    g.add_argument("--param", action="append", metavar="MEASURE.KEY=VALUE",
                   help="set a measure's parameter, e.g. silhouette.n=500 (repeatable; checked against the "
                   "measure's parameters; part of the stored result's key)")
    g.add_argument("--budget", type=_seconds, default=DEFAULT_BUDGET_S,
                   help=f"seconds allowed per model and measure (default: {DEFAULT_BUDGET_S:g}, the competition's)")
    _add_plugin_options(g)


def _repeats(text: str):
    return "auto" if text == "auto" else _positive_int(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
    parser = _Parser(
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
    p.add_argument("--compare", nargs=2, action="append", metavar=("A", "B"),
                   help="compare two measures on each task, paired on the same test resamples and repeats "
                   "(repeatable; Holm-corrected over the pairs and tasks asked for)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_run_options(p)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("leaderboard", help="compute measures like score, then write a leaderboard: HTML, "
                       "Markdown, CSV, JSON, plots and .predict files")
    _add_tasks_and_measures(p)
    p.add_argument("--out", default="leaderboard", help="folder for leaderboard.{html,md,csv,json}, plots/ and "
                   "predictions/<measure>/<task>.predict (default: leaderboard)")
    p.add_argument("--suite", choices=["pgdl"], help="pgdl: every official PGDL task found under --root, in the "
                   "competition's order, with the competition's task average (100 x mean of the task CMIs)")
    p.add_argument("--root", help="with --suite pgdl: where the data is (default: where `pgdl-bench data pgdl` "
                   "puts it, $PGDL_BENCH_HOME/pgdl or ~/.cache/pgdl-bench/pgdl)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_run_options(p)
    p.set_defaults(func=_cmd_leaderboard)

    p = sub.add_parser("data", help="download the official PGDL data")
    data = p.add_subparsers(dest="data_command", required=True)
    q = data.add_parser("pgdl", help="download, check and unpack the official PGDL zips (resumable)")
    q.add_argument("suite", choices=["public", "phase1", "phase2", "all"],
                   help="public: tasks 1, 2 (8.8 GB); phase1: tasks 4, 5 (2.5 GB); phase2: tasks 6-9 (9.0 GB)")
    q.add_argument("--out", help="where to unpack (default: $PGDL_BENCH_HOME/pgdl, else ~/.cache/pgdl-bench/pgdl)")
    q.add_argument("--url", help="base URL of a mirror holding the zips (default: the official "
                   "http://storage.googleapis.com/gresearch/pgdl)")
    q.add_argument("--keep-zip", action="store_true", help="keep each zip after unpacking it")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=_cmd_data_pgdl)

    p = sub.add_parser("evaluate", help="score an existing .predict file")
    p.add_argument("task", help="PGDL task folder, or a zoo recipe name such as digits-bn")
    p.add_argument("predict_file", help='JSON {"model_<id>": value, ...}')
    p.add_argument("--reference", help="folder holding model_configs.json, if apart from the task")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--sign", type=int, choices=[1, -1], default=1,
                   help="+1 (default): larger predictions mean a larger gap; -1: smaller ones do (for the "
                   "robust sign-error; CMI and tau do not depend on it)")
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
    q.add_argument("--seed", type=int, default=None, help="training seed (default: the recipe's); the data "
                   "subset stays the recipe's")
    q.add_argument("--replicates", type=int, default=None, metavar="K",
                   help="train the grid with K training seeds (--seed .. --seed + K - 1) into a replicate set: "
                   "OUT/<recipe>-seed<S>/ per seed and OUT/replicates.json; `score OUT` reports each replicate "
                   "and the mean and spread over them")
    q.add_argument("--workers", type=int, default=None, help="models trained at once (default: one per core)")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_zoo_build)

    p = sub.add_parser("store", help="what the results store holds: list it, or remove what the current code "
                       "would not produce")
    store = p.add_subparsers(dest="store_command", required=True)
    for name, text in (("list", "per task and measure: code versions (current or stale), results, repeats, age"),
                       ("prune", "remove results whose measure's code, libraries or loaders have changed since")):
        q = store.add_parser(name, help=text)
        q.add_argument("--store", help="SQLite results store (default: $PGDL_BENCH_HOME/results.sqlite)")
        q.add_argument("--json", action="store_true", help="print JSON") if name == "list" else \
            q.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
        _add_plugin_options(q)
        q.set_defaults(func=_cmd_store)

    add_study_parsers(sub)
    return parser


def _store_groups(args) -> list[dict]:
    """The store's summary, each group marked current, stale (its measure's code is another now) or unknown
    (a measure not registered here: load its plugin to judge it)."""
    _load_plugins(args)
    current = {}
    with ResultStore(args.store) as store:
        groups = store.summary()
        path = store.path
    for g in groups:
        name = g["measure"]
        if g["task_name"].startswith("study "):
            g["state"] = "study"
            continue
        if name not in current:
            try:
                current[name] = code_version(measure_registry.get(name))
            except measure_registry.MeasureError:
                current[name] = None
        g["state"] = "unknown" if current[name] is None else ("current" if g["version"] == current[name] else "stale")
    return groups, path


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _cmd_store(args) -> int:
    groups, path = _store_groups(args)
    if args.store_command == "prune":
        stale: dict[str, set[str]] = {}
        for g in groups:
            if g["state"] == "stale":
                stale.setdefault(g["measure"], set()).add(g["version"])
        count = sum(g["rows"] for g in groups if g["state"] == "stale")
        if not args.dry_run:
            with ResultStore(args.store) as store:
                count = sum(store.delete_versions(m, v) for m, v in stale.items())
        unknown = sorted({g["measure"] for g in groups if g["state"] == "unknown"})
        print(f"{'would remove' if args.dry_run else 'removed'} {count} result(s) of {len(stale)} measure(s) made by "
              f"other code from {path}" + (f"; kept {len(unknown)} measure(s) not registered here (load their plugin "
                                          f"with --plugin to judge them): {', '.join(unknown)}" if unknown else ""))
        return 0
    if args.json:
        print(json.dumps({"store": str(path), "groups": groups}, indent=2))
        return 0
    if not groups:
        print(f"{path}: empty")
        return 0
    now = time.time()
    heads = ("task", "measure", "version", "state", "results", "ok", "repeats", "newest")
    rows = [(g["task_name"], g["measure"], g["version"], g["state"], str(g["rows"]), str(g["ok"]), str(g["repeats"]),
             _age(now - g["newest"]) + " ago") for g in groups]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    print(f"{path}: {sum(g['rows'] for g in groups)} results")
    for r in [heads, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    stale = sum(g["rows"] for g in groups if g["state"] == "stale")
    if stale:
        print(f"{stale} result(s) are stale (their measure's code is another now; never reused): "
              "`pgdl-bench store prune` removes them")
    return 0


def _cmd_new_measure(args) -> int:
    from .scaffold import new_measure

    root = new_measure(args.name, args.out)
    print(f"wrote {root}/ (pyproject.toml with the entry point, {root.name.replace('-', '_')}/__init__.py, "
          f"tests/, README.md)")
    print(f"next: pip install -e '{root}[test]' (into pgdl-bench's environment; [test] adds pytest) && "
          f"pgdl-bench measures | grep {args.name} && pgdl-bench score -m {args.name} && "
          f"python -m pytest {root / 'tests'}")
    return 0


def _cmd_data_pgdl(args) -> int:
    from .data.pgdl_data import OFFICIAL_URL, SUITES, default_data_dir, fetch_archive, find_tasks

    out = Path(args.out) if args.out else default_data_dir()
    for archive in SUITES[args.suite]:
        if not args.quiet:
            print(f"{archive.filename} ({archive.tasks}, {archive.documented_gb} GB) -> {out / archive.stem}",
                  file=sys.stderr)
        dest = fetch_archive(archive, out, args.url or OFFICIAL_URL, progress=not args.quiet, keep_zip=args.keep_zip)
        tasks = find_tasks(dest)
        print(f"{dest}: {len(tasks)} task folder(s)")
        for task in tasks:
            print(f"  {task}  ({len(load_task(task).model_ids)} models)")
    return 0


def _cmd_zoo_list(args) -> int:
    width = max(len(n) for n in RECIPES)
    for name, recipe in RECIPES.items():
        where = "pinned" if pinned_zoo(name) else ("cached" if (zoo_cache_dir() / name / "model_configs.json").is_file()
                                                   else "")
        print(f"{name:<{width}}  {len(recipe.models()):>3} models  {where:<6}  {recipe.description}")
    return 0


def _cmd_zoo_build(args) -> int:
    recipe = get_recipe(args.name)
    seed = recipe.training_seed if args.seed is None else args.seed
    start = time.monotonic()
    # one torch thread per worker: training is then deterministic whatever the number of workers
    executor = LocalExecutor(workers=args.workers, threads_per_worker=1, budget=TRAIN_BUDGET_S)
    if args.replicates is not None:
        out = build_replicates(recipe, seed, args.replicates, args.out, executor, data=args.data, fresh=args.fresh,
                               progress=not args.quiet)
        members = read_replicate_set(out).members
    else:
        members = [build_zoo(recipe.with_seed(seed), args.out, executor, data=args.data, fresh=args.fresh,
                             progress=not args.quiet)]
    seconds = time.monotonic() - start
    for folder in members:
        task = load_task(folder)
        gaps = sorted(task.gaps())
        took = f" ({seconds:.0f} s)" if args.replicates is None else ""
        print(f"{task.name}: {len(gaps)} models in {folder}{took}; generalization gap "
              f"min {gaps[0]:.4f}, median {gaps[len(gaps) // 2]:.4f}, max {gaps[-1]:.4f}")
        print(f"  fingerprint {short_fingerprint(content_fingerprint(folder))}; {_pinned_comparison(recipe, folder)}")
    if args.replicates is not None:
        print(f"replicate set: {out} ({seconds:.0f} s; score it with `pgdl-bench score {out}`)")
    return 0


# The errors this program raises on purpose, each with a message that names what is at fault.
BAD_INPUT_ERRORS = (TaskFormatError, UsageError, PredictionError, measure_registry.MeasureError, StoreError)
FAILURE_ERRORS = (MeasureFailure, ZooBuildError, DataError, StudyError)
# File-system refusals: the environment's doing (a read-only or full disk), never a bug of ours.
ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _terminated(signum, frame):
    raise KeyboardInterrupt  # unwinds like Ctrl-C: workers stopped, every finished result already stored


def _pinned_comparison(recipe, folder: Path) -> str:
    """Whether a local build is the pinned zoo of its recipe, bit for bit."""
    expected = PINNED_FINGERPRINTS.get(recipe.name)
    if expected is None:
        return f"'{recipe.name}' has no pinned copy"
    if json.loads((folder / "zoo.json").read_text()).get("training_seed") != recipe.seed:
        return f"the pinned '{recipe.name}' was trained from seed {recipe.seed}, not comparable"
    if content_fingerprint(folder) == expected:
        return f"matches the pinned '{recipe.name}' exactly (sha256:{expected[:16]})"
    return (f"differs from the pinned '{recipe.name}' (sha256:{expected[:16]}): training's float results differ "
            "between machines; `score` uses the pinned zoo")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():  # SIGTERM stops a run cleanly, like Ctrl-C
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return args.func(args)
    except BAD_INPUT_ERRORS as exc:
        print(f"pgdl-bench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FAILURE_ERRORS as exc:
        print(f"pgdl-bench: error: {exc}", file=sys.stderr)
        return EXIT_MEASURE_FAILED
    except BrokenPipeError:  # `pgdl-bench measures | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit flush must not fail again
        return 141
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            return _internal_error()
        where = exc.filename or getattr(args, "out", None) or "a file"
        print(f"pgdl-bench: error: {where}: cannot write ({exc.strerror}); choose a writable place "
              "(--out, --store or PGDL_BENCH_HOME)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("pgdl-bench: interrupted", file=sys.stderr)
        return 130
    except Exception:
        return _internal_error()


def _internal_error() -> int:
    """Anything not raised on purpose is a bug here: show the traceback and ask for a report."""
    traceback.print_exc()
    print("pgdl-bench: internal error: this is a bug in pgdl-bench, not in your input; please report it "
          "to the maintainers with the traceback above and the command you ran", file=sys.stderr)
    return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
