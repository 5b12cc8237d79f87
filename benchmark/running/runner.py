"""Run measures over the models of tasks through the executor, with every result kept in the store.

One job per model: the worker loads the model once, builds its view, and computes every pending
measure on it (activations shared), reporting each value as soon as it exists. The parent stores each
result the moment it arrives; a rerun computes only what the store lacks.

Repeats: with ``repeats=K`` every stochastic measure (``Measure.stochastic``) is computed K times,
repeat k on a view seeded with k (``ModelView(repeat=k)``) and stored with ``repeat = k``; a
deterministic one once, as repeat 0.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import measures as measure_registry
from measures import ModelView, code_identity
from measures.code_identity import code_version
from task_loaders import Task, TaskFormatError, load_task

from .executor import Emitter, Job, JobFailed, PartResult, SerialExecutor, run_jobs
from .store import ResultStore, params_key, task_fingerprint


class MeasureFailure(RuntimeError):
    """A measure that raised or returned something other than a finite number on one model."""


def model_view(task: Task, model_id: str, repeat: int = 0, loaded=None, device: str = "cpu") -> ModelView:
    """Load one model of a task (unless ``loaded`` is given) and wrap it, with the task's training split,
    for measures on ``device``; ``repeat`` seeds the view's random draws (see ``ModelView``)."""
    loaded = loaded or task.load_model(model_id)
    return ModelView(
        loaded.network,
        task.train_split(),
        initial_network=loaded.initial_network,
        model_id=model_id,
        task_name=task.name,
        repeat=repeat,
        device=device,
    )


def part_name(name: str, repeat: int) -> str:
    """A job part (one value to compute): the measure's name, with ``#r<k>`` for repeat k >= 1."""
    return name if repeat == 0 else f"{name}#r{repeat}"


def _describe_type(value) -> str:
    """What a value is, without its printout: ``a str``, ``a torch.Tensor of shape (3,) and dtype float32``."""
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__.split('.')[0]}.{kind.__qualname__}"
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"a {name} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"a {name}"


def _is_real_dtype(dtype) -> bool:
    if isinstance(dtype, torch.dtype):
        return not dtype.is_complex and dtype != torch.bool
    return np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)


def finite_value(value, name: str) -> float:
    """A measure's return value as a finite float, or MeasureFailure saying what it was.

    Only real numbers count: Python and NumPy ints and floats, and 0-d real tensors or arrays; a
    bool, a string or a tensor of several values is a failure naming its type (and shape), so that
    ``"3.5"`` or ``True`` are never scored as numbers.
    """
    if isinstance(value, (np.ndarray, torch.Tensor)):
        if value.ndim != 0 or not _is_real_dtype(value.dtype):
            raise MeasureFailure(f"measure '{name}' returned {_describe_type(value)}, not a number")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise MeasureFailure(f"measure '{name}' returned {_describe_type(value)}, not a number")
    try:
        number = float(value)
    except OverflowError:
        raise MeasureFailure(f"measure '{name}' returned an integer too large for a float") from None
    if not math.isfinite(number):
        raise MeasureFailure(f"measure '{name}' returned {number}, not a finite number")
    return number


# -- worker side ------------------------------------------------------------------------------

_TASK_CACHE: dict[tuple[str, str | None], Task] = {}


def _cached_task(path: str, reference: str | None) -> Task:
    key = (path, reference)
    if key not in _TASK_CACHE:
        _TASK_CACHE.clear()  # one task's splits in memory at a time
        _TASK_CACHE[key] = load_task(path, reference)
    return _TASK_CACHE[key]


def ship(entry) -> bytes:
    """A measure that workers cannot import (defined in a script's or a notebook's ``__main__``), by value:
    cloudpickle keeps its function's code and the globals it uses."""
    import cloudpickle

    return cloudpickle.dumps(entry)


def _register_shipped(shipped: dict[str, bytes]) -> None:
    import cloudpickle

    from measures.registry import _REGISTRY

    for name, blob in shipped.items():
        if name not in _REGISTRY:
            measure_registry.add(cloudpickle.loads(blob))  # our own parent's bytes, never a task folder's


def measure_job(emit: Emitter, task_path: str, reference: str | None, model_id: str,
                params: dict[str, dict], parts: dict[str, tuple[str, int]] | None = None,
                device: str = "cpu", shipped: dict[str, bytes] | None = None) -> None:
    """Job function: the measures named in ``emit.parts`` on one model, each value reported on its own.

    ``parts`` maps a part to its (measure, repeat) (default: the part is a measure's name, repeat 0).
    Parts are computed repeat by repeat, each repeat on its own view (one at a time in memory) on
    ``device``; the model is loaded once. ``shipped``: measures sent by value (``ship``), registered first.
    """
    emit.phase("load")
    _register_shipped(shipped or {})
    parts = parts or {}
    try:
        task = _cached_task(task_path, reference)
        loaded = task.load_model(model_id)
        task.train_split()  # read (and cached) here, so that a bad split is bad input, not a measure's error
    except TaskFormatError as exc:
        raise JobFailed(str(exc), status="bad_input") from None
    view = None
    for part in sorted(emit.parts, key=lambda p: parts.get(p, (p, 0))[1]):
        name, repeat = parts.get(part, (part, 0))
        if view is None or view.repeat != repeat:
            view = None  # release the previous repeat's activations first
            view = model_view(task, model_id, repeat, loaded, device)
        entry = measure_registry.get(name)
        emit.run(part, lambda: finite_value(entry(view, **params.get(name, {})), name))


# -- parent side ------------------------------------------------------------------------------


@dataclass
class Failure:
    task: str
    model_id: str
    measure: str
    status: str
    error: str
    replayed: bool = False  # stored by an earlier run, not computed by this one


@dataclass
class TaskRun:
    """One task of a run: its identity in the store and the measures' settings."""

    task: Task
    fingerprint: str
    measures: dict[str, tuple[str, str]]  # name -> (params key, version) in the store
    params: dict[str, dict]
    repeats: dict[str, int] = field(default_factory=dict)  # name -> repeats to compute (default 1)

    def num_repeats(self, name: str) -> int:
        return self.repeats.get(name, 1)

    def key(self, name: str, repeat: int = 0) -> tuple[str, str, int]:
        """(params, version, repeat): the store's key of repeat ``repeat`` of a measure on this task."""
        params, version = self.measures[name]
        return params, version, repeat

    def parts(self) -> dict[str, tuple[str, int]]:
        """Every (measure, repeat) to compute, by job part name, repeat 0 first."""
        names = list(self.measures)
        rounds = max([self.num_repeats(n) for n in names] or [1])
        return {part_name(n, k): (n, k) for k in range(rounds) for n in names if k < self.num_repeats(n)}


@dataclass
class RunReport:
    computed: int = 0
    reused: int = 0
    failures: list[Failure] = field(default_factory=list)
    stale: list[tuple[str, str]] = field(default_factory=list)  # (task, measure) recomputed: made by other code


def measure_settings(names: list[str], overrides: dict[str, dict] | None = None) -> dict[str, dict]:
    """Each measure's parameters: its defaults updated by ``overrides``, checked (``Measure.resolve``)."""
    return {name: measure_registry.get(name).resolve((overrides or {}).get(name)) for name in names}


def prepare(task: Task, names: list[str], overrides: dict[str, dict] | None = None,
            repeats: int | dict[str, int] = 1) -> TaskRun:
    """A task's run of ``names``: each stochastic measure ``repeats`` times (or ``repeats[name]`` times),
    each deterministic one once."""
    wanted = repeats if isinstance(repeats, dict) else {n: repeats for n in names}
    for value in wanted.values():
        if int(value) != value or value < 1:
            raise ValueError(f"--repeats must be a positive integer, got {value!r}")
    params = measure_settings(names, overrides)
    keyed = {n: (params_key(params[n], builtin=measure_registry.family(measure_registry.get(n)) != "plugins"),
                 code_version(measure_registry.get(n))) for n in names}
    counts = {n: int(wanted.get(n, 1)) if measure_registry.get(n).stochastic else 1 for n in names}
    return TaskRun(task, task_fingerprint(task), keyed, params, counts)


REFILL_ROUNDS = 2  # times a run recomputes results that another run deleted meanwhile, before it gives up
LOST = ("deleted from the store by another run (--fresh or --retry-failed on the same store?) each time this "
        "run computed it; rerun once the other run is over")


def run_measures(
    runs: list[TaskRun],
    store: ResultStore,
    executor=None,
    fresh: bool = False,
    retry_failed: bool = False,
    plugins: tuple[str, ...] = (),
    progress: bool = True,
    device: str = "cpu",
) -> RunReport:
    """Compute what the store lacks for every (task, model, measure); store each result on arrival.

    Another run on the same store may delete results meanwhile (``--fresh``): after the executor, the
    store is checked again and what went missing recomputed, up to ``REFILL_ROUNDS`` times; what is
    still missing then is a failure with status "lost", never a silently absent result.
    """
    executor = executor or SerialExecutor()
    report = RunReport()
    for run in runs:
        names = list(run.measures)
        if fresh:
            store.delete(run.fingerprint, names)
        elif retry_failed:
            store.delete_failed(run.fingerprint, names)
    owners: dict[str, tuple[TaskRun, str]] = {}  # job key -> (its run, its model id); keys are never parsed
    reused: dict[int, dict[str, set[str]]] = {}  # id(run) -> part -> models whose stored result is reused
    jobs = _pending_jobs(runs, store, plugins, owners, report, reused, device)
    parts = {id(run): run.parts() for run in runs}

    def on_result(result: PartResult) -> bool:
        run, model_id = owners[result.job]
        name, repeat = parts[id(run)][result.part]
        params, version, _ = run.key(name, repeat)
        value = float(result.value) if result.ok else None
        store.put(run.fingerprint, run.task.name, model_id, name, params, version, result.status,
                  value, result.error, result.seconds, repeat=repeat)
        report.computed += 1
        return True  # failures are read back from the store below, with those of earlier runs

    for refill in range(REFILL_ROUNDS + 1):
        if not jobs:
            break
        missing = sum(len(job.parts) for job in jobs)
        if refill:
            print(f"pgdl-bench: warning: {missing} result(s) went missing from the store while this run "
                  "computed (another run deleted them); recomputing them", file=sys.stderr)
        run_jobs(executor, jobs, on_result, total=missing, desc="measures", unit="result", progress=progress)
        jobs = _pending_jobs(runs, store, plugins, owners, device=device)
    for job in jobs:
        run, model_id = owners[job.key]
        report.failures += [Failure(run.task.name, model_id, parts[id(run)][part][0], "lost", LOST)
                            for part in job.parts]
    for run in runs:
        for name in run.measures:
            failed: dict[str, Failure] = {}  # one failure per model and measure, whichever repeat
            for k in range(run.num_repeats(name)):
                for model_id, row in store.rows(run.fingerprint, name, *run.key(name, k)).items():
                    if row.status != "ok" and model_id not in failed:
                        failed[model_id] = Failure(run.task.name, model_id, name, row.status, row.error,
                                                   replayed=model_id in reused[id(run)][part_name(name, k)])
            report.failures += failed.values()
    return report


def _pending_jobs(runs: list[TaskRun], store: ResultStore, plugins: tuple[str, ...],
                  owners: dict[str, tuple[TaskRun, str]], report: RunReport | None = None,
                  reused: dict[int, dict[str, set[str]]] | None = None, device: str = "cpu") -> list[Job]:
    """One job per model for the measures the store lacks.

    On the first call of a run (``report`` given) it also counts the reused results, records which
    models' stored results are reused (``reused``) and which measures' results were made by other code.
    """
    jobs: list[Job] = []
    shipped_blobs: dict[str, bytes] = {}
    for run in runs:
        names = list(run.measures)
        wanted = run.parts()  # every (measure, repeat) as a job part, repeat 0 first
        done = {part: store.rows(run.fingerprint, n, *run.key(n, k)) for part, (n, k) in wanted.items()}
        if reused is not None:
            reused[id(run)] = {part: set(rows) for part, rows in done.items()}
        if report is not None:
            for name in names:
                params, version = run.measures[name]
                if (len(done[name]) < len(run.task.model_ids)
                        and store.versions(run.fingerprint, name, params) - {version}):
                    report.stale.append((run.task.name, name))
        for model_id in run.task.model_ids:
            pending = [part for part in wanted if model_id not in done[part]]
            if report is not None:
                report.reused += len(wanted) - len(pending)
            if not pending:
                continue
            key = f"{run.task.name}/model_{model_id}"
            owners[key] = (run, model_id)
            job_parts = {part: wanted[part] for part in pending}
            pending_names = list(dict.fromkeys(n for n, _ in job_parts.values()))
            shipped = {n: shipped_blobs.setdefault(n, ship(measure_registry.get(n)))
                       for n in pending_names if _needs_shipping(n)}
            jobs.append(Job(
                key=key,
                fn=measure_job,
                kwargs=dict(task_path=str(Path(run.task.path).resolve()),
                            reference=str(Path(run.task.metrics_path).resolve()), model_id=model_id,
                            params={n: run.params[n] for n in pending_names}, parts=job_parts, device=device,
                            shipped=shipped),
                parts=tuple(pending),
                imports=tuple(plugins) + _measure_modules(pending_names),
            ))
    return jobs


def _needs_shipping(name: str) -> bool:
    """Whether workers cannot import a measure's module by name: ``__main__`` (a script, a notebook)."""
    return measure_registry.get(name).fn.__module__ in ("__main__", "__mp_main__")


def _measure_modules(names: list[str]) -> tuple[str, ...]:
    """Modules workers must import so that these measures are registered there too (shipped ones aside)."""
    modules = []
    for name in names:
        module = measure_registry.get(name).fn.__module__
        if not _needs_shipping(name) and module not in modules:
            modules.append(module)
    return tuple(modules)


def stored_values(store: ResultStore, run: TaskRun, name: str, repeat: int = 0) -> dict[str, float] | None:
    """{"model_<id>": value} of a measure's repeat on a task, or None while any model lacks an ok result."""
    rows = store.rows(run.fingerprint, name, *run.key(name, repeat))
    if any(rows.get(m) is None or rows[m].status != "ok" for m in run.task.model_ids):
        return None
    return {f"model_{m}": rows[m].value for m in run.task.model_ids}


def stored_repeats(store: ResultStore, run: TaskRun, name: str) -> list[dict[str, float]] | None:
    """Every repeat's values of a measure on a task (``stored_values`` of 0 .. K-1), or None while any
    repeat lacks an ok result on some model."""
    out = []
    for k in range(run.num_repeats(name)):
        values = stored_values(store, run, name, k)
        if values is None:
            return None
        out.append(values)
    return out



# The runner's part of the way from task files to a measure's value: its code is in every stored value's key.
code_identity.PIPELINE_EXTRA[:] = [model_view, measure_job, finite_value]
