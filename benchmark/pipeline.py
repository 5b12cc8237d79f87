"""The one way from tasks and measures to scores: load plugins and tasks, compute what the results store
lacks, and score every (task, measure) from the stored values. ``pgdl-bench score`` prints what
``score_computed`` returns; ``score`` returns the same object to a script or a notebook.
"""

from __future__ import annotations

import ast
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace


import measures as measure_registry
from measures.repeats_rule import RepeatsRule
from task_loaders import TaskFormatError, load_task
from task_loaders.pinned import pinned_zoo
from task_loaders.replicates import read_replicate_set
from task_loaders.zoo import RECIPES

from .scores.comparisons import TEST_METHOD
from .scores.intervals import INTERVAL_METHOD, VERDICT_INTERVAL_METHOD
from .data.zoo_builder import build_zoo, default_zoo_paths
from .leaderboard import collect
from .noise_ceiling import replicate_set_ceiling, task_noise_ceiling
from .replicate_scores import summarize_replicates
from .running.executor import DEFAULT_BUDGET_S, make_executor
from .running.plugins import load_plugin
from .running.provenance import provenance, task_provenance
from .running.runner import LOST, Failure, prepare, run_measures, stored_repeats
from .running.store import ResultStore
from .running.submission import submission_dir
from .scores.scoring import PredictionError, TaskArrays, conditional_mutual_information

DEFAULT_REPEATS = "auto"


def executor_of(args):
    """The executor that ``args`` (``--backend``, ``--workers``, ``--threads``, ``--budget``, ...) ask for."""
    return make_executor(args.backend, args.workers, args.threads, args.budget, args.scheduler, args.device)


def load_plugins(args) -> tuple[list[str], list[str]]:
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


def task_path(path: str) -> str:
    """A task folder, or the name of an in-house zoo: a pinned one (digits-bn, digits-nobn) is read from the
    package; any other recipe is built into the cache on first use."""
    if not Path(path).exists() and path in RECIPES:
        pinned = pinned_zoo(path)
        return str(pinned) if pinned is not None else str(build_zoo(path))
    return path


def load_tasks(paths: list[str], reference: str | None, failures: list[str]) -> list:
    tasks = []
    seen = {}
    for path in paths:
        try:
            task = load_task(task_path(path), reference)
        except TaskFormatError as exc:
            failures.append(str(exc))
            continue
        if task.name in seen:
            failures.append(f"{task.path}: task name '{task.name}' is also used by {seen[task.name]}")
            continue
        seen[task.name] = task.path
        tasks.append(task)
    return tasks


@dataclass
class Computed:
    """What a run of measures over tasks left: read scores from ``store`` while it is open."""

    names: list[str]
    runs: list
    store: ResultStore
    report: object
    load_failures: list[str]
    replicate_sets: list = None  # (ReplicateSet, [member task names]) of the replicate sets among the tasks
    device: str = "cpu"  # where the measures ran (--device)

    def provenance(self) -> dict:
        """The ``"provenance"`` object of this run (measures' settings and tasks' fingerprints)."""
        params = self.runs[0].params if self.runs else {n: dict(measure_registry.get(n).params) for n in self.names}
        return provenance({r.task.name: task_provenance(r.task, r.fingerprint) for r in self.runs}, params,
                          device=self.device)


@contextmanager
def computed(args):
    """Load plugins, measures and tasks, compute what the store lacks; yield with the store still open."""
    plugins, provided = load_plugins(args)
    names = measure_registry.select(args.measure) if args.measure else (provided or measure_registry.available())
    overrides = parse_params(args.param or [], names)
    if args.reference and len(args.task) != 1:
        raise PredictionError("--reference applies to a single task")
    load_failures: list[str] = []
    paths, replicate_sets = expand_replicate_sets(args.task or [str(p) for p in default_zoo_paths()])
    tasks = load_tasks(paths, args.reference, load_failures)
    rule = REPEATS_RULE if args.repeats == "auto" else None
    counts = {n: rule.k_min if rule else int(args.repeats) for n in names}
    executor = executor_of(args)
    with ResultStore(args.store) as store:
        fresh, retry_failed, first = args.fresh, args.retry_failed, None
        while True:
            runs = [prepare(task, names, overrides, repeats=counts) for task in tasks]
            report = run_measures(runs, store, executor, fresh=fresh, retry_failed=retry_failed,
                                  plugins=tuple(plugins), progress=not args.quiet, device=args.device)
            fresh = retry_failed = False  # once: later rounds only add repeats
            if first is None:
                first = report
            else:  # a later round: what it computed adds up; its failures are all there are (read from the store)
                report.computed += first.computed
                report.reused, report.stale = first.reused, first.stale
                first = report
            more = _more_repeats(runs, store, rule) if rule else []
            if not more:
                break
            for name in more:
                counts[name] += 1
        yield Computed(names, runs, store, report, load_failures, replicate_sets, args.device)


# ``--repeats auto`` (the default): repeats by need, the rule of ``measures.repeats_rule`` on the CMI of each
# task, two repeats at least and six at most, stopping once the mean CMI's standard error is below 0.02 (two
# points of CMI x100) with 90% confidence.
REPEATS_RULE = RepeatsRule(target_se=0.02, k_min=2, k_max=6)


def _more_repeats(runs, store, rule: RepeatsRule) -> list[str]:
    """The stochastic measures that need another repeat: on some task, the rule asks for one given the CMI of
    the repeats stored so far (a measure that failed somewhere gets none: its score is undefined anyway)."""
    more = []
    for name in runs[0].measures if runs else []:
        if not measure_registry.get(name).stochastic or runs[0].num_repeats(name) >= rule.k_max:
            continue
        needs = False
        for run in runs:
            repeats = stored_repeats(store, run, name)
            if repeats is None:
                needs = False
                break
            arrays = TaskArrays.from_task(run.task)
            cmis = [conditional_mutual_information(values, arrays).cmi for values in repeats]
            needs = needs or (not any(math.isnan(c) for c in cmis) and rule.needs_another(cmis))
        if needs:
            more.append(name)
    return more


def expand_replicate_sets(paths: list[str]) -> tuple[list[str], list]:
    """Task folders with every replicate set (a folder with ``replicates.json``) replaced by its members."""
    out, sets = [], []
    for path in paths:
        replicate_set = read_replicate_set(path)
        if replicate_set is None:
            out.append(path)
        else:
            out += [str(m) for m in replicate_set.members]
            sets.append((replicate_set, [m.resolve().name for m in replicate_set.members]))
    return out, sets


def reference_rows(c: Computed) -> tuple[dict, dict]:
    """The noise ceilings of the tasks that have them (in-house zoos) and the replicate sets' summaries:
    ({task: ceiling}, {set name: {"members", "seeds", "replicate_ceiling"}})."""
    ceilings = {}
    for run in c.runs:
        try:
            ceiling = task_noise_ceiling(run.task)
        except TaskFormatError as exc:  # a damaged correctness file: no ceiling, exit 2 after the table
            c.load_failures.append(str(exc))
            continue
        if ceiling is not None:
            ceilings[run.task.name] = ceiling
    sets = {}
    by_name = {run.task.name: run.task for run in c.runs}
    for replicate_set, members in c.replicate_sets or []:
        present = [by_name[m] for m in members if m in by_name]
        entry = {"recipe": replicate_set.recipe, "members": members, "seeds": list(replicate_set.seeds)}
        if len(present) == len(members) and len(members) >= 2:
            try:
                entry["replicate_ceiling"] = replicate_set_ceiling(present)
            except TaskFormatError as exc:
                c.load_failures.append(str(exc))
        sets[replicate_set.name] = entry
    return ceilings, sets


def parse_params(specs: list[str], names: list[str]) -> dict[str, dict]:
    """``--param MEASURE.KEY=VALUE`` settings: {measure: {key: value}}, each checked by ``Measure.resolve``.

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
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        try:
            entry.resolve({key: value})
        except measure_registry.MeasureError as exc:
            raise measure_registry.MeasureError(f"--param {spec!r}: {exc}") from None
        out.setdefault(name, {})[key] = value
    return out


def score_computed(c: "Computed", out_dir: str | Path, repeats: int) -> tuple[dict, list, bool]:
    """Every (task, measure) of a run scored from the store (``leaderboard.collect``, as the leaderboard does):
    the ``score --json`` object, the table's rows (task, measure, scores) and whether any ``.predict`` file was
    written (``out_dir/<measure>/<task>.predict``). Models whose results went missing from the store after the
    run (another run deleted them) become "lost" failures."""
    out_dir = Path(out_dir)
    collected = collect(c.runs, c.store, c.names, out_dir, predictions="")
    out: dict = {"tasks": {}, "uncertainty": {"repeats": repeats, "interval": VERDICT_INTERVAL_METHOD,
                                              "interval_without_correctness": INTERVAL_METHOD, "test": TEST_METHOD}}
    rows, written = [], False
    known = {(f.task, f.model_id, f.measure) for f in c.report.failures}
    for task in collected.tasks:
        entries = {}
        for name in c.names:
            cell = collected.cells[name][task.name]
            for model_id in cell.missing_models or []:
                if (task.name, model_id, name) not in known:
                    c.report.failures.append(Failure(task.name, model_id, name, "lost", LOST))
            if cell.scores is None:
                continue
            written = True
            files = [str(out_dir / f) for f in cell.predict_files]
            entries[name] = {**cell.scores, "predictions": cell.values, "predict_file": files[0], "predict_files": files}
            rows.append((task.name, name, entries[name]))
        out["tasks"][task.name] = entries
    ceilings, replicate_sets = reference_rows(c)
    for entry in replicate_sets.values():
        entry["measures"] = summarize_replicates(out["tasks"], entry["members"])
    out["noise_ceiling"] = ceilings
    out["replicate_sets"] = replicate_sets
    out["provenance"] = c.provenance()
    return out, rows, written


def score(tasks=None, measures=None, *, repeats: int = DEFAULT_REPEATS, params: dict[str, dict] | None = None,
          store: str | Path | None = None, out: str | Path = "predictions", backend: str = "local",
          workers: int | None = None, threads: int | None = None, budget: float = DEFAULT_BUDGET_S,
          device: str = "cpu", scheduler: str | None = None, plugins: list[str] | None = None,
          fresh: bool = False, retry_failed: bool = False, progress: bool = True) -> dict:
    """Score measures over tasks from Python: what ``pgdl-bench score --json`` prints, as a dict.

    ``tasks``: task folders or zoo names (default: the embedded zoos); ``measures``: names, ``"all"`` or
    ``"family:NAME"`` (default: every registered measure), a measure defined in this script or notebook
    included (workers receive it by value); ``params``: ``{measure: {key: value}}``. Values come from and
    go to the results store (``store``), so a second call replays them. Failures are listed under
    ``"failures"``; nothing is raised for a failing measure.
    """
    overrides = [f"{m}.{k}={v!r}" for m, kv in (params or {}).items() for k, v in kv.items()]
    args = SimpleNamespace(task=[str(t) for t in ([tasks] if isinstance(tasks, (str, Path)) else tasks or [])],
                           measure=[measures] if isinstance(measures, str) else measures, param=overrides,
                           reference=None, repeats=repeats, store=store, fresh=fresh, retry_failed=retry_failed,
                           quiet=not progress, device=device, backend=backend, workers=workers, threads=threads,
                           budget=budget, scheduler=scheduler, plugin=list(plugins or []), submission=None)
    check_output_folder(out)
    with computed(args) as c:
        result, _, _ = score_computed(c, out, repeats)
        report = c.report
    result["failures"] = [vars(f) for f in report.failures] + [{"error": e} for e in c.load_failures]
    result["computed"], result["reused"] = report.computed, report.reused
    return result


def check_output_folder(path: str | Path) -> Path:
    """An output folder that can be written, checked before any work: a file in its place is bad input."""
    path = Path(path)
    for folder in [path, *path.parents]:
        if folder.exists():
            if not folder.is_dir():
                raise PredictionError(f"{folder}: exists and is not a folder; choose another output folder (--out)")
            break
    return path
