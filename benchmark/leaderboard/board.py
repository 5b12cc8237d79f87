"""The leaderboard as data: tasks, cells (one measure on one task), and the rows every format renders.

``build`` turns the collected cells into one JSON-ready dict, one row per measure in the default order
(mean CMI x 100 descending, rows without a mean last), plus the reference rows: the published scores
of ``published.PUBLISHED_SCORES`` on tasks recognized as official, and the noise ceilings. Every
writer renders this dict, so the formats cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..scores.comparisons import TEST_METHOD
from ..scores.intervals import INTERVAL_METHOD, t_interval
from ..noise_ceiling import REPLICATE_ROW, SPLIT_HALF_ROW
from .published import PUBLISHED_SCORES, official_task

PUBLISHED_NOTE = "published, not computed here"
CEILING_NOTE = "noise ceiling, not a measure"


@dataclass
class TaskInfo:
    name: str
    num_models: int

    @property
    def official(self) -> str | None:
        return official_task(self.name, self.num_models)


@dataclass
class Cell:
    """One measure on one task: the scores when every model has an ok result, else the counts."""

    num_models: int
    failed: int = 0  # models with a stored error or timeout
    missing: int = 0  # models with no stored result
    scores: dict | None = None  # repeats.summarize() of evaluate()'s dicts, one per repeat
    values: dict[str, float] | None = None  # repeat 0's
    predict_file: str | None = None  # repeat 0's, relative to the leaderboard folder
    repeat_values: list[dict[str, float]] | None = None  # every repeat's, repeat 0 first
    predict_files: list[str] | None = None
    missing_models: list[str] | None = None  # ids of the models with no stored result


def _finite(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def finite_floats(data):
    """``data`` with every NaN float (nested in dicts) as None, for strict JSON."""
    if isinstance(data, dict):
        return {k: finite_floats(v) for k, v in data.items()}
    return _finite(data) if isinstance(data, float) else data


def _mean(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def task_average_x100(cmis: list[float | None]) -> float | None:
    """The competition's task-average score of a measure: ``100 * (sum of the tasks' CMI / number of tasks)``,
    the official scoring program's operations in its order (its ``task_average_score``); None unless every
    task is scored. (The official program silently left a task that raised an error out of the mean; a
    measure not scored on every task gets no average here instead.)"""
    if not cmis or any(c is None for c in cmis):
        return None
    return sum(cmis) / float(len(cmis)) * 100.0


def _sort_key(row: dict):
    mean = row["mean_cmi_x100"]
    return (mean is None, -(mean or 0.0), row["reference"], row["measure"])


def _scaled(bounds, scale: float = 1.0) -> list[float] | None:
    return None if bounds is None else [bounds[0] * scale, bounds[1] * scale]


def _task_entry(cell: Cell) -> dict:
    """One scored cell as JSON: the means over repeats and, under their own keys, intervals and robust scores."""
    s = cell.scores
    robust = s["robust_sign_error"]
    intervals = s["intervals"]
    entry = {
        "cmi": _finite(s["cmi"]),
        "cmi_x100": _finite(s["cmi"] * 100),
        "kendall_tau": _finite(s["kendall_tau"]),
        "psi": _finite(s["granulated_kendall"]["psi"]),
        "granulated_kendall": {k: _finite(v) for k, v in s["granulated_kendall"].items()},
        "conditions": {k: _finite(v) for k, v in s["conditions"].items()},
        "predict_file": cell.predict_file,
        "repeats": s["repeats"],
        "intervals": {"cmi_x100": _scaled(intervals["cmi"], 100), "kendall_tau": intervals["kendall_tau"],
                      "psi": intervals["psi"], "robust_sign_error": intervals["robust_sign_error"]},
        "robust_sign_error": robust["robust"],
        "robust_sign_error_detail": robust,
    }
    if len(cell.predict_files or []) > 1:
        entry["predict_files"] = cell.predict_files
        entry["repeat_cmi_x100"] = [_finite(v * 100) for v in s["repeat_scores"]["cmi"]]
    return entry


def _mean_interval(row: dict, tasks: list[TaskInfo], cells: dict[str, Cell], stochastic: bool) -> list[float] | None:
    """95% t-interval over repeats of the mean CMI x 100 over tasks (repeat k's mean over tasks is one value)."""
    if row["mean_cmi_x100"] is None:
        return None
    per_task = []
    for t in tasks:
        s = cells[t.name].scores
        per_task.append(s["repeat_scores"]["cmi"] if "repeat_scores" in s else [s["cmi"]])
    if len({len(v) for v in per_task}) != 1 or any(math.isnan(x) for v in per_task for x in v):
        return None
    means = np.mean(np.array(per_task) * 100, axis=0)
    _, low, high = t_interval(means, exact=not stochastic)
    return None if low is None else [low, high]


def build(tasks: list[TaskInfo], cells: dict[str, dict[str, Cell]] | None = None,
          measure_info: dict[str, dict] | None = None, comparisons: dict[str, dict] | None = None,
          ceilings: dict[str, dict] | None = None, replicate_ceilings: dict[str, dict] | None = None) -> dict:
    """The leaderboard as one JSON-ready dict; rows in the default order (mean CMI x 100 descending,
    rows without a mean last). ``measure_info``: per measure ``sign``, ``source``, ``description``,
    ``stochastic``; ``comparisons``: ``compare_with_best``'s result (the tie marks).

    Means are over all the leaderboard's tasks, and undefined (None) unless the row is scored on each.
    Every CMI, tau and psi is a mean over the measure's repeats, with its 95% interval under
    ``intervals`` (``mean_cmi_x100_interval`` for the mean over tasks).
    """
    cells = cells or {}
    measure_info = measure_info or {}
    comparisons = comparisons or {}
    rows = []
    for name, per_task in cells.items():
        info = measure_info.get(name, {})
        row = {"measure": name, "reference": False, "origin": "computed", "sign": info.get("sign"),
               "source": info.get("source", ""), "description": info.get("description", ""), "tasks": {}}
        for t in tasks:
            cell = per_task[t.name]
            entry = {"scored": cell.scores is not None, "num_models": cell.num_models,
                     "failed_models": cell.failed, "missing_models": cell.missing}
            if cell.scores is not None:
                entry.update(_task_entry(cell))
            else:
                entry.update({"cmi": None, "cmi_x100": None, "kendall_tau": None, "psi": None,
                              "robust_sign_error": None})
            row["tasks"][t.name] = entry
        for key, out in (("cmi_x100", "mean_cmi_x100"), ("kendall_tau", "mean_kendall_tau"), ("psi", "mean_psi"),
                         ("robust_sign_error", "mean_robust_sign_error")):
            row[out] = _mean([row["tasks"][t.name][key] for t in tasks])
        row["mean_cmi_x100"] = task_average_x100([row["tasks"][t.name]["cmi"] for t in tasks])
        row["mean_cmi_x100_interval"] = _mean_interval(row, tasks, per_task, info.get("stochastic", True))
        comparison = comparisons.get(name)
        row["comparison_with_best"] = comparison
        row["tied_with_best"] = None if comparison is None else comparison["tied_with_best"]
        row["tasks_scored"] = sum(1 for t in tasks if row["tasks"][t.name]["scored"])
        rows.append(row)
    rows += reference_rows(tasks)
    rows += ceiling_rows(tasks, ceilings or {}, replicate_ceilings or {})
    rows.sort(key=_sort_key)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return {
        "tasks": [{"name": t.name, "num_models": t.num_models, "official": t.official} for t in tasks],
        "score_note": "CMI is the official PGDL score (conditional mutual information), x 100; tau is "
                      "Kendall's tau-b against the generalization gap; psi the granulated Kendall coefficient; "
                      "robust the worst-case sign-error over hyperparameters (Dziugaite et al., NeurIPS 2020; 0 is "
                      "perfect, 0.5 a coin flip). Means are over all tasks, undefined where a task is not scored. "
                      "Each number is the mean over the measure's repeats +- half its 95% interval.",
        "uncertainty": {"interval": INTERVAL_METHOD, "test": TEST_METHOD},
        "rows": rows,
    }


def ceiling_rows(tasks: list[TaskInfo], ceilings: dict[str, dict], replicate_ceilings: dict[str, dict]) -> list[dict]:
    """The noise-ceiling reference rows (not measures): "gap noise ceiling" (``noise_ceiling.gap_noise_ceiling``)
    on each task that has one, and "replicate gap ceiling" on the members of replicate sets (for each
    member, the other replicates' gaps as measures of its gaps: ``replicate_ceiling``'s ``per_replicate``)."""
    rows = []
    for label, per_task, source in (
        (SPLIT_HALF_ROW, ceilings, "this zoo's per-sample test correctness: the gap on one random half of the test "
                                   "set as a measure of the gap on the other half, mean over random halvings"),
        (REPLICATE_ROW, replicate_ceilings, "the replicate set: the other training seeds' gaps as measures of this "
                                            "replicate's gaps, mean over them"),
    ):
        if not per_task:
            continue
        row = {"measure": label, "reference": True, "origin": CEILING_NOTE, "sign": None, "source": source,
               "description": CEILING_NOTE, "tasks": {}}
        for t in tasks:
            c = per_task.get(t.name)
            row["tasks"][t.name] = {"scored": c is not None, "cmi": None if c is None else _finite(c["cmi"]),
                                    "cmi_x100": None if c is None else _finite(c["cmi"] * 100),
                                    "kendall_tau": None if c is None else _finite(c["kendall_tau"]), "psi": None,
                                    "robust_sign_error": None}
        row["mean_cmi_x100"] = _mean([row["tasks"][t.name]["cmi_x100"] for t in tasks])
        row["mean_kendall_tau"] = _mean([row["tasks"][t.name]["kendall_tau"] for t in tasks])
        rows.append(_without_statistics(row, tasks))
    return rows


def _without_statistics(row: dict, tasks: list[TaskInfo]) -> dict:
    """A reference row: none of the statistics that only computed measures have (psi, robust, intervals, ties)."""
    row.setdefault("mean_kendall_tau", None)
    row.update({"mean_psi": None, "mean_robust_sign_error": None, "mean_cmi_x100_interval": None,
                "comparison_with_best": None, "tied_with_best": None})
    row["tasks_scored"] = sum(1 for t in tasks if row["tasks"][t.name]["scored"])
    return row


def scores_by_task(board: dict) -> dict[str, dict[str, dict]]:
    """Task -> measure -> the scores of a computed, scored row (in ``scoring.evaluate``'s shape)."""
    out: dict[str, dict[str, dict]] = {t["name"]: {} for t in board["tasks"]}
    for row in board["rows"]:
        if row["reference"]:
            continue
        for task, e in row["tasks"].items():
            if e["scored"]:
                out[task][row["measure"]] = {"cmi": e["cmi"], "kendall_tau": e["kendall_tau"],
                                             "granulated_kendall": {"psi": e["psi"]}}
    return out


def best_of_ceiling(board: dict, task: str, ceiling: dict) -> dict | None:
    """The computed measure with the highest CMI on ``task`` and the fraction of the noise ceiling it reaches."""
    scored = [r for r in board["rows"] if not r["reference"] and r["tasks"][task].get("cmi") is not None]
    if not scored or not ceiling.get("cmi"):
        return None
    best = max(scored, key=lambda r: r["tasks"][task]["cmi"])
    cmi = best["tasks"][task]["cmi"]
    return {"measure": best["measure"], "cmi": cmi, "fraction_of_ceiling": cmi / ceiling["cmi"]}


def reference_rows(tasks: list[TaskInfo]) -> list[dict]:
    """Rows of ``PUBLISHED_SCORES`` that have a value on one of ``tasks`` recognized as official."""
    officials = {t.name: t.official for t in tasks}
    present = {o for o in officials.values() if o}
    rows = []
    for pub in PUBLISHED_SCORES:
        if not present & (set(pub.cmi_x100) | set(pub.mean_tasks)):
            continue
        row = {"measure": pub.name, "reference": True, "origin": PUBLISHED_NOTE, "sign": None,
               "source": pub.citation, "description": PUBLISHED_NOTE, "tasks": {}}
        for t in tasks:
            value = pub.cmi_x100.get(officials[t.name]) if officials[t.name] else None
            row["tasks"][t.name] = {"scored": value is not None, "published_task": officials[t.name],
                                    "cmi": None if value is None else value / 100, "cmi_x100": value,
                                    "kendall_tau": None, "psi": None, "robust_sign_error": None}
        row["mean_cmi_x100"] = _mean([row["tasks"][t.name]["cmi_x100"] for t in tasks])
        if pub.mean_x100 is not None:
            row["published_mean_x100"] = pub.mean_x100
            row["published_mean_tasks"] = list(pub.mean_tasks)
            ids = [officials[t.name] for t in tasks]
            if len(ids) == len(set(ids)) and set(ids) == set(pub.mean_tasks):
                row["mean_cmi_x100"] = pub.mean_x100  # the leaderboard's tasks are exactly those of the mean
        rows.append(_without_statistics(row, tasks))
    return rows
