"""Run measures over the models of tasks through the executor, with every result kept in the store.

One job per model: the worker loads the model once, builds its view, and computes every pending
measure on it (activations shared), reporting each value as soon as it exists. The parent stores each
result the moment it arrives; a rerun computes only what the store lacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

import measures as measure_registry
from measures import ModelView
from task_loaders import Task, TaskFormatError, load_task

from .executor import Emitter, Job, JobFailed, PartResult, SerialExecutor
from .store import ResultStore, params_key, task_fingerprint


class MeasureFailure(RuntimeError):
    """A measure that raised or returned something other than a finite number on one model."""


def model_view(task: Task, model_id: str, device: str = "cpu") -> ModelView:
    """Load one model of a task and wrap it, with the task's training split, for measures on ``device``."""
    loaded = task.load_model(model_id)
    return ModelView(
        loaded.network,
        task.train_split(),
        initial_network=loaded.initial_network,
        model_id=model_id,
        task_name=task.name,
        device=device,
    )


def finite_value(value, name: str) -> float:
    """A measure's return value as a finite float, or MeasureFailure saying what it was."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MeasureFailure(f"measure '{name}' returned {value!r}, not a number") from None
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


def measure_job(emit: Emitter, task_path: str, reference: str | None, model_id: str,
                params: dict[str, dict], device: str = "cpu") -> None:
    """Job function: the measures named in ``emit.parts`` on one model, each value reported on its own."""
    emit.phase("load")
    try:
        view = model_view(_cached_task(task_path, reference), model_id, device)
    except TaskFormatError as exc:
        raise JobFailed(str(exc), status="bad_input") from None
    for name in emit.parts:
        entry = measure_registry.get(name)
        emit.run(name, lambda: finite_value(entry(view, **params.get(name, {})), name))


# -- parent side ------------------------------------------------------------------------------


@dataclass
class Failure:
    task: str
    model_id: str
    measure: str
    status: str
    error: str


@dataclass
class TaskRun:
    """One task of a run: its identity in the store and the measures' settings."""

    task: Task
    fingerprint: str
    measures: dict[str, tuple[str, str]]  # name -> (params key, version)
    params: dict[str, dict]


@dataclass
class RunReport:
    computed: int = 0
    reused: int = 0
    failures: list[Failure] = field(default_factory=list)


def measure_settings(names: list[str], overrides: dict[str, dict] | None = None) -> dict[str, dict]:
    """Each measure's parameters: its defaults updated by ``overrides``."""
    out = {}
    for name in names:
        entry = measure_registry.get(name)
        params = dict(entry.params)
        for key, value in (overrides or {}).get(name, {}).items():
            if key not in entry.params:
                raise measure_registry.MeasureError(f"measure '{name}' has no parameter {key!r}")
            params[key] = value
        out[name] = params
    return out


def prepare(task: Task, names: list[str], overrides: dict[str, dict] | None = None) -> TaskRun:
    params = measure_settings(names, overrides)
    keyed = {n: (params_key(params[n]), measure_registry.get(n).version) for n in names}
    return TaskRun(task, task_fingerprint(task), keyed, params)


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
    """Compute what the store lacks for every (task, model, measure); store each result on arrival."""
    executor = executor or SerialExecutor()
    report = RunReport()
    jobs: list[Job] = []
    owners: dict[str, TaskRun] = {}
    for run in runs:
        names = list(run.measures)
        if fresh:
            store.delete(run.fingerprint, names)
        elif retry_failed:
            store.delete_failed(run.fingerprint, names)
        done = {n: store.rows(run.fingerprint, n, *run.measures[n]) for n in names}
        for model_id in run.task.model_ids:
            pending = [n for n in names if model_id not in done[n]]
            report.reused += len(names) - len(pending)
            if not pending:
                continue
            key = f"{run.task.name}/model_{model_id}"
            owners[key] = run
            jobs.append(Job(
                key=key,
                fn=measure_job,
                kwargs=dict(task_path=str(Path(run.task.path).resolve()),
                            reference=str(Path(run.task.metrics_path).resolve()), model_id=model_id,
                            params={n: run.params[n] for n in pending}, device=device),
                parts=tuple(pending),
                imports=tuple(plugins) + _measure_modules(pending),
            ))
    total = sum(len(job.parts) for job in jobs)
    bar = tqdm(total=total, desc="measures", unit="result", disable=not progress or total == 0, leave=False)

    def on_result(result: PartResult) -> None:
        run = owners[result.job]
        model_id = result.job.rsplit("/model_", 1)[1]
        params, version = run.measures[result.part]
        value = float(result.value) if result.ok else None
        store.put(run.fingerprint, run.task.name, model_id, result.part, params, version, result.status,
                  value, result.error, result.seconds)
        report.computed += 1
        bar.update(1)

    try:
        executor.run(jobs, on_result)
    finally:
        bar.close()
    for run in runs:
        for name, (params, version) in run.measures.items():
            for model_id, row in store.rows(run.fingerprint, name, params, version).items():
                if row.status != "ok":
                    report.failures.append(Failure(run.task.name, model_id, name, row.status, row.error))
    return report


def _measure_modules(names: list[str]) -> tuple[str, ...]:
    """Modules workers must import so that these measures are registered there too."""
    modules = []
    for name in names:
        module = measure_registry.get(name).fn.__module__
        if module not in ("__main__",) and module not in modules:
            modules.append(module)
    return tuple(modules)


def stored_values(store: ResultStore, run: TaskRun, name: str) -> dict[str, float] | None:
    """{"model_<id>": value} of a measure on a task, or None while any model lacks an ok result."""
    rows = store.rows(run.fingerprint, name, *run.measures[name])
    if any(rows.get(m) is None or rows[m].status != "ok" for m in run.task.model_ids):
        return None
    return {f"model_{m}": rows[m].value for m in run.task.model_ids}
