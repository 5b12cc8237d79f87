"""Collecting results: each (task, measure) from the results store, its ``.predict`` files, its scores, and
the paired comparison of every measure with the best one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import measures as measure_registry
from task_loaders import TaskFormatError

from ..scores.comparisons import paired_test
from ..scores.resampling import task_gap_resamples
from ..scores.verdicts import task_verdicts
from ..data.predict_files import write_predict
from ..repeats import summarize
from ..scores.scoring import TaskArrays, evaluate
from .board import Cell, TaskInfo
from .cache import ScoreCache
from .files import PREDICTIONS, repeat_file, safe_filename


@dataclass
class Computed:
    """What ``collect`` found: per measure, per task, a Cell; plus the data the plots need."""

    tasks: list[TaskInfo]
    measures: list[str]
    cells: dict[str, dict[str, Cell]]  # measure -> task -> Cell
    gaps: dict[str, tuple[list[str], np.ndarray]]  # task -> (model keys, gaps)
    fingerprints: dict[str, str] = field(default_factory=dict)  # task -> its store fingerprint
    arrays: dict[str, TaskArrays] = field(default_factory=dict)  # task -> what scoring needs
    gap_resamples: dict[str, np.ndarray | None] = field(default_factory=dict)  # task -> (B, N) or None


def collect(runs, store, names: list[str], out_dir: str | Path, cache: ScoreCache | None = None,
            predictions: str | Path = PREDICTIONS) -> Computed:
    """Read each (task, measure) from the store, every repeat; write its ``.predict`` files (under
    ``out_dir/predictions``) and score them where every model has an ok result in every repeat (through
    ``cache`` when given). The one way from stored values to scores: ``score``, ``leaderboard`` and the
    Python ``benchmark.score`` all read the store through it."""
    out_dir = Path(out_dir)
    tasks, cells, gaps = [], {n: {} for n in names}, {}
    fingerprints, all_arrays, gap_resamples = {}, {}, {}
    for run in runs:
        task = run.task
        tasks.append(TaskInfo(task.name, len(task.model_ids)))
        fingerprints[task.name] = run.fingerprint
        arrays = TaskArrays.from_task(task)
        all_arrays[task.name] = arrays
        gaps[task.name] = (arrays.keys, arrays.gaps)
        for name in names:
            entry = measure_registry.get(name)
            count = run.num_repeats(name)
            stored = [store.rows(run.fingerprint, name, *run.key(name, k)) for k in range(count)]
            cell = Cell(len(task.model_ids), missing_models=[])
            for model_id in task.model_ids:
                found = [rows.get(model_id) for rows in stored]
                if any(row is not None and row.status != "ok" for row in found):
                    cell.failed += 1
                elif any(row is None for row in found):
                    cell.missing += 1
                    cell.missing_models.append(model_id)
            relative = [repeat_file(name, task.name, k, predictions) for k in range(count)]
            folder = out_dir / relative[0].parent
            keep = set() if cell.failed or cell.missing else {out_dir / rel for rel in relative}
            for path in [out_dir / relative[0], *folder.glob(f"repeat-*/{safe_filename(task.name)}.predict")]:
                if path not in keep:
                    path.unlink(missing_ok=True)  # a previous run's file would pass for a score
            if cell.failed or cell.missing:
                cells[name][task.name] = cell
                continue
            cell.repeat_values = [{f"model_{m}": rows[m].value for m in task.model_ids} for rows in stored]
            per_repeat = []
            for values, rel in zip(cell.repeat_values, relative):
                path = write_predict(out_dir / rel, values)
                key = cache.score_key(run.fingerprint, values, entry.sign) if cache else None
                scores = cache.scores.get(key) if cache else None
                if scores is None:
                    scores = evaluate(values, arrays, where=str(path), sign=entry.sign)
                if cache:
                    cache.used_scores[key] = scores
                per_repeat.append(scores)
            cell.scores = summarize(per_repeat, entry.stochastic)
            cell.values = cell.repeat_values[0]
            cell.predict_files = [rel.as_posix() for rel in relative]
            cell.predict_file = cell.predict_files[0]
            cells[name][task.name] = cell
        scored = [n for n in names if cells[n][task.name].scores is not None]
        gap_resamples[task.name] = _gap_resamples(task, run.fingerprint)
        verdicts = task_verdicts(
            arrays, {n: np.array([[v[k] for k in arrays.keys] for v in cells[n][task.name].repeat_values])
                     for n in scored},
            {n: measure_registry.get(n).sign for n in scored}, gap_resamples[task.name], (run.fingerprint,),
            stochastic={n: measure_registry.get(n).stochastic for n in scored})
        for n in scored:
            cells[n][task.name].scores.update(verdicts[n])
    return Computed(tasks, list(names), cells, gaps, fingerprints, all_arrays, gap_resamples)


def _gap_resamples(task, fingerprint: str):
    """The task's joint test-set resamples of the gaps (B, N), seeded by its fingerprint; None without
    per-sample correctness (official PGDL folders)."""
    try:
        resamples = task_gap_resamples(task, identity=fingerprint)
    except TaskFormatError:  # a damaged correctness file: reported with the ceilings; the repeats still vary
        return None
    return None if resamples is None else resamples.gaps


def compare_with_best(computed: Computed, cache: ScoreCache | None = None) -> dict[str, dict]:
    """``scores.comparisons.paired_test`` of every measure scored on every task against the best one (the highest
    mean CMI over tasks), as JSON-ready dicts; cached on the fingerprints and every repeat's values."""
    complete = [n for n in computed.measures if all(computed.cells[n][t.name].scores for t in computed.tasks)]
    if not complete or not computed.tasks:
        return {}
    per_task = {}
    for t in computed.tasks:
        arrays = computed.arrays[t.name]
        keys = arrays.keys
        per_task[t.name] = (arrays, {n: np.array([[v[k] for k in keys] for v in computed.cells[n][t.name].repeat_values])
                                     for n in complete})
    key = None
    if cache:
        key = cache.key("compare", [computed.fingerprints[t.name] for t in computed.tasks],
                         {n: [computed.cells[n][t.name].repeat_values for t in computed.tasks] for n in complete})
        if key in cache.comparisons:
            cache.used_comparisons[key] = cache.comparisons[key]
            return cache.comparisons[key]
    result = {n: c.as_dict() for n, c in paired_test(per_task, gap_resamples=computed.gap_resamples).items()}
    if cache:
        cache.used_comparisons[key] = result
    return result
