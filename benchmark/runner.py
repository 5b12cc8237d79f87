"""Run measures over the models of a task: one model loaded at a time, its view shared by all measures."""

from __future__ import annotations

import math
from typing import Callable, Iterable

from tqdm import tqdm

import measures as measure_registry
from measures import ModelView
from task_loaders import Task


class MeasureFailure(RuntimeError):
    """A measure that raised or returned something other than a finite number on one model."""

    def __init__(self, measure: str, task: str, model_id: str, detail: str):
        super().__init__(f"measure '{measure}' failed on {task}/model_{model_id}: {detail}")
        self.measure, self.task, self.model_id, self.detail = measure, task, model_id, detail


def model_view(task: Task, model_id: str) -> ModelView:
    """Load one model of a task and wrap it, with the task's training split, for measures."""
    loaded = task.load_model(model_id)
    return ModelView(
        loaded.network,
        task.train_split(),
        initial_network=loaded.initial_network,
        model_id=model_id,
        hparams=task.hparams(model_id),
        task_name=task.name,
    )


def compute_model(task: Task, model_id: str, names: Iterable[str], params: dict | None = None) -> dict[str, float]:
    """Every requested measure on one model; values are checked to be finite floats."""
    view = model_view(task, model_id)
    out = {}
    for name in names:
        entry = measure_registry.get(name)
        try:
            value = entry(view, **(params or {}).get(name, {}))
        except MeasureFailure:
            raise
        except Exception as exc:  # a measure is third-party code: report which one failed, where
            raise MeasureFailure(name, task.name, model_id, f"{type(exc).__name__}: {exc}") from exc
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise MeasureFailure(name, task.name, model_id, f"returned {value!r}, not a number") from None
        if not math.isfinite(value):
            raise MeasureFailure(name, task.name, model_id, f"returned {value}")
        out[name] = value
    return out


def score_task(
    task: Task,
    names: list[str],
    params: dict | None = None,
    progress: bool = True,
    on_model: Callable[[str, dict], None] | None = None,
) -> dict[str, dict[str, float]]:
    """{measure: {"model_<id>": value}} over all models of a task, one model at a time."""
    for name in names:
        measure_registry.get(name)  # unknown names fail before any work
    results: dict[str, dict[str, float]] = {name: {} for name in names}
    bar = tqdm(task.model_ids, desc=task.name, unit="model", disable=not progress, leave=False)
    for model_id in bar:
        values = compute_model(task, model_id, names, params)
        for name, value in values.items():
            results[name][f"model_{model_id}"] = value
        if on_model is not None:
            on_model(model_id, values)
    return results
