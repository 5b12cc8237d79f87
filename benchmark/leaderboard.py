"""A leaderboard of complexity measures over tasks: Markdown, CSV, JSON and a self-contained HTML page.

``collect`` reads every (task, measure) result from the results store (computed beforehand by
``runner.run_measures``, as ``pgdl-bench score`` does), writes the ``.predict`` files and scores them;
``build`` turns that into one JSON-ready dict (one row per measure, default order by mean CMI
descending), which every writer renders, so the four formats cannot disagree. A measure that failed
on some models of a task is *not scored* there (with the number of failed models); its means over
tasks are then undefined and it sorts after the scored rows.

For official PGDL tasks (recognized by ``official_task``) the published scores of
``PUBLISHED_SCORES`` are added as reference rows, marked "published, not computed here" in every
format (``"reference": true`` in JSON, a ``reference`` column in CSV, an ``origin`` column and a style
in Markdown and HTML).

The HTML page is one file: inline CSS, one inline script (sorting; it reads cells through
``textContent`` and ``data-`` attributes only and whitelists itself in a Content-Security-Policy
by hash), plots as base64 PNG. Every name, task and citation is passed through ``html.escape``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .bootstrap import INTERVAL_METHOD, TEST_METHOD, paired_test, t_interval
from .noise_ceiling import REPLICATE_ROW, SPLIT_HALF_ROW
from .pgdl_data import OFFICIAL_TASK_NAME
from .predict_files import write_predict
from .repeats import summarize
from .replicate_scores import summarize_replicates
from .scoring import TaskArrays, evaluate

PUBLISHED_NOTE = "published, not computed here"
CEILING_NOTE = "noise ceiling, not a measure"

# -- published reference scores -------------------------------------------------------------------

NATEKAR = ('Natekar & Sharma, "Representation Based Complexity Measures for Predicting Generalization '
           'in Deep Learning", arXiv:2012.02775 (PGDL winners)')
LASSANCE = ("Lassance et al., label variation in latent geometry graphs (VPM), 3rd place in the PGDL final "
            "phase (competition report, Jiang et al., arXiv:2012.07976)")
AITHAL = ("Aithal et al., robustness to augmentations, 2nd place in the PGDL final phase (competition "
          "report, Jiang et al., arXiv:2012.07976); only the mean over tasks 6-9 is published")
ORGANIZERS = "PGDL organizers' baseline (competition report, Jiang et al., arXiv:2012.07976)"


@dataclass(frozen=True)
class Published:
    """Published CMI x 100 of one measure on the official PGDL tasks (keys ``task1`` ... ``task9``).

    ``mean_x100`` is a published mean over ``mean_tasks`` where only that mean is given.
    """

    name: str
    citation: str
    cmi_x100: dict[str, float] = field(default_factory=dict)
    mean_x100: float | None = None
    mean_tasks: tuple[str, ...] = ()


def _per_task(tasks: str, values: list[float]) -> dict[str, float]:
    ids = [f"task{t}" for t in tasks.split()]
    assert len(ids) == len(values)
    return dict(zip(ids, values))


# From docs/SCORING.md ("Published reference scores"). The winners' final-phase mean (22.92) is the
# mean of DBI x LWM over tasks 6-9, and VPM's (9.99) the mean of its task 6-9 values: both follow
# from the per-task rows, so only the 2nd team's mean needs a row of its own.
PUBLISHED_SCORES: tuple[Published, ...] = (
    Published("DBI x LWM (Davies-Bouldin index x (1 - label-wise mixup accuracy))", NATEKAR,
              _per_task("1 2 4 5 6 7 8 9", [25.22, 22.19, 31.79, 15.92, 43.99, 12.59, 9.24, 25.86])),
    Published("mixup margin", NATEKAR,
              _per_task("1 2 4 5 6 7 8 9", [1.11, 47.33, 43.22, 34.57, 11.46, 21.98, 1.48, 20.78])),
    Published("augment margin", NATEKAR,
              _per_task("1 2 4 5 6 7 8 9", [15.66, 48.34, 47.22, 22.82, 8.67, 11.97, 1.28, 15.25])),
    Published("VPM (label variation in latent geometry graphs)", LASSANCE,
              _per_task("1 2 6 7 8 9", [6.07, 6.44, 13.90, 7.56, 16.23, 2.28])),
    Published("robustness to augmentations (2nd place, final phase)", AITHAL,
              mean_x100=10.16, mean_tasks=("task6", "task7", "task8", "task9")),
    Published("distance from init (baseline)", ORGANIZERS, _per_task("1 2 4 5", [5.13, 4.71, 2.78, 1.26])),
    Published("Jacobian norm (baseline)", ORGANIZERS, _per_task("1 2 4 5", [0.94, 3.15, 1.09, 7.30])),
    Published("sharpness (baseline)", ORGANIZERS, _per_task("1 2 4 5", [0.00, 0.00, 0.85, 0.79])),
)

# Model counts: tasks 1 and 2 as documented in docs/PGDL_FORMAT.md (96 and 54 models, which are also the
# products of their README grids). Tasks 4-9: the product of the hyperparameter grid that the PGDL
# README (google-research/google-research, pgdl/README.md) lists for each, since a task is a complete
# grid with one model per cell (the official scorer rejects anything else): task 4 and 5: 2^6 (size,
# depth, reversed, weight decay, learning rate, batch size); task 6: 2 x 2 x 2 x 3 x 2 x 2; task 7:
# 2 x 2 x 2 x 2 x 3; tasks 8 and 9: 2^5. Derived from the README, not checked against the data.
DOCUMENTED_MODEL_COUNTS = {"task1": 96, "task2": 54, "task4": 64, "task5": 64, "task6": 96, "task7": 48,
                           "task8": 32, "task9": 32}


def official_task(name: str, num_models: int | None) -> str | None:
    """The official PGDL task (``"task1"``, ``"task2"``, ``"task4"`` ... ``"task9"``) a folder is, or None.

    Recognized by folder name (``task1``, ``task1_v4``, ``Task2_v1``, ...: ``task<N>`` with an optional
    ``_v<digits>`` suffix, case-insensitive) AND by the model count of ``DOCUMENTED_MODEL_COUNTS``
    (task 1 has 96 models, task 2 54; tasks 4-9 the size of the grid the PGDL README lists).
    """
    match = OFFICIAL_TASK_NAME.fullmatch(name.strip())
    if not match:
        return None
    task_id = f"task{match.group(1)}"
    expected = DOCUMENTED_MODEL_COUNTS.get(task_id)
    if expected is not None and num_models != expected:
        return None
    return task_id


# -- file names -----------------------------------------------------------------------------------


def safe_filename(name: str) -> str:
    """A file name for any measure or task name: percent-encoding of everything but letters, digits and
    ``_.-~:+=,@`` (so ``/`` cannot make folders, nor ``..`` leave the output folder). Names made of those
    characters only, which is every built-in measure, come back unchanged. Injective."""
    text = quote(name, safe=":+=,@")
    if text.startswith("."):
        text = "%2E" + text[1:]
    return text or "%"


# -- collecting scores ----------------------------------------------------------------------------


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


@dataclass
class Computed:
    """What ``collect`` found: per measure, per task, a Cell; plus the data the plots need."""

    tasks: list[TaskInfo]
    measures: list[str]
    cells: dict[str, dict[str, Cell]]  # measure -> task -> Cell
    gaps: dict[str, tuple[list[str], np.ndarray]]  # task -> (model keys, gaps)
    fingerprints: dict[str, str] = field(default_factory=dict)  # task -> its store fingerprint
    arrays: dict[str, TaskArrays] = field(default_factory=dict)  # task -> what scoring needs


# -- the cache that makes a rerun over a warm store cheap ------------------------------------------

CACHE_FILE = ".leaderboard-cache.json"


def _code_key() -> str:
    """What scores and plots depend on besides their data: this code, the scoring code, library versions."""
    import matplotlib
    import scipy

    from . import bootstrap, repeats, robust, scoring

    h = hashlib.sha256()
    for module_file in (__file__, scoring.__file__, robust.__file__, repeats.__file__, bootstrap.__file__):
        h.update(Path(module_file).read_bytes())
    h.update(f"{np.__version__} {scipy.__version__} {matplotlib.__version__}".encode())
    return h.hexdigest()


class ScoreCache:
    """Scores and plots of the previous run into the same folder (``DIR/.leaderboard-cache.json``), keyed by
    hashes of everything they depend on: the task's fingerprint in the store (its metrics file, weights),
    the predictions, the scoring and plotting code and library versions. A rerun over a warm store then
    neither rescores nor redraws what did not change; anything that changed is computed afresh."""

    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / CACHE_FILE
        self.code = _code_key()
        self.scores: dict[str, dict] = {}
        self.plots: dict[str, str] = {}
        self.comparisons: dict[str, dict] = {}
        self.used_scores: dict[str, dict] = {}
        self.used_plots: dict[str, str] = {}
        self.used_comparisons: dict[str, dict] = {}
        try:
            data = json.loads(self.path.read_text())
            if data.get("code") == self.code:
                self.scores, self.plots = dict(data["scores"]), dict(data["plots"])
                self.comparisons = dict(data.get("comparisons", {}))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no cache, or an unreadable one: compute everything

    def _key(self, *parts) -> str:
        h = hashlib.sha256(self.code.encode())
        for part in parts:
            h.update(b"\0" + (part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode()))
        return h.hexdigest()

    def score_key(self, fingerprint: str, values: dict[str, float], sign: int = 1) -> str:
        return self._key(fingerprint, values, sign)

    def plot_key(self, fingerprint: str, *data) -> str:
        return self._key(fingerprint, *data)

    def save(self) -> None:
        data = {"code": self.code, "scores": self.used_scores, "plots": self.used_plots,
                "comparisons": self.used_comparisons}
        try:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)
        except OSError:
            pass  # a cache that cannot be written costs only time


def _repeat_file(name: str, task: str, repeat: int) -> Path:
    """``predictions/<measure>/<task>.predict`` (repeat 0) or ``predictions/<measure>/repeat-<k>/<task>.predict``."""
    folder = Path("predictions") / safe_filename(name)
    return (folder / f"repeat-{repeat}" if repeat else folder) / f"{safe_filename(task)}.predict"


def collect(runs, store, names: list[str], out_dir: str | Path, cache: "ScoreCache | None" = None) -> Computed:
    """Read each (task, measure) from the store, every repeat; write its ``.predict`` files and score
    them where every model has an ok result in every repeat (through ``cache`` when given)."""
    import measures as measure_registry

    out_dir = Path(out_dir)
    tasks, cells, gaps = [], {n: {} for n in names}, {}
    fingerprints, all_arrays = {}, {}
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
            cell = Cell(len(task.model_ids))
            for model_id in task.model_ids:
                found = [rows.get(model_id) for rows in stored]
                if any(row is not None and row.status != "ok" for row in found):
                    cell.failed += 1
                elif any(row is None for row in found):
                    cell.missing += 1
            relative = [_repeat_file(name, task.name, k) for k in range(count)]
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
    return Computed(tasks, list(names), cells, gaps, fingerprints, all_arrays)


def compare_with_best(computed: Computed, cache: "ScoreCache | None" = None) -> dict[str, dict]:
    """``bootstrap.paired_test`` of every measure scored on every task against the best one (the highest
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
        key = cache._key("compare", [computed.fingerprints[t.name] for t in computed.tasks],
                         {n: [computed.cells[n][t.name].repeat_values for t in computed.tasks] for n in complete})
        if key in cache.comparisons:
            cache.used_comparisons[key] = cache.comparisons[key]
            return cache.comparisons[key]
    result = {n: c.as_dict() for n, c in paired_test(per_task).items()}
    if cache:
        cache.used_comparisons[key] = result
    return result


# -- the leaderboard as data ----------------------------------------------------------------------


def _finite(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _finite_floats(data):
    """``data`` with every NaN float (nested in dicts) as None, for strict JSON."""
    if isinstance(data, dict):
        return {k: _finite_floats(v) for k, v in data.items()}
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


def _scores_by_task(board: dict) -> dict[str, dict[str, dict]]:
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


# -- formatting helpers ---------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _pm_text(value: float | None, bounds, digits: int = 2) -> str:
    """``value ± h``, h half the width of its 95% interval (``± ?`` for a stochastic measure scored once)."""
    text = _fmt(value, digits) or "nan"
    if bounds is None:
        return text if value is None else f"{text} ± ?"
    return f"{text} ± {(bounds[1] - bounds[0]) / 2:.{digits}f}"


def _versus_text(row: dict) -> str:
    """The paired comparison with the best measure: 'best', 'tied (p = 0.34)', 'worse (p = 0.01)' or ''."""
    c = row.get("comparison_with_best")
    if not c:
        return ""
    if c["best"] == row["measure"]:
        return "best"
    return f"{'tied' if c['tied_with_best'] else 'worse'} (p = {c['p_value']:.2f})"


def _cell_text(row: dict, task: str) -> str:
    """What a table shows for a row on a task: CMI x 100 ± half its 95% interval, 'not scored (k of N
    failed)' or '-'."""
    entry = row["tasks"][task]
    if entry["scored"] and not row["reference"]:
        return _pm_text(entry["cmi_x100"], entry["intervals"]["cmi_x100"])
    if entry["scored"]:
        return _fmt(entry["cmi_x100"]) or "nan"
    if row["reference"]:
        return "-"
    return _not_scored(entry)


def _task_text(t: dict) -> str:
    """A task as the page and the Markdown name it: models, official task, fingerprint."""
    extra = f", official PGDL {t['official']}" if t.get("official") else ""
    if t.get("fingerprint"):
        extra += f", fingerprint sha256:{t['fingerprint'][:16]}" + (" (pinned)" if t.get("pinned") else "")
    return f"{t['name']} ({t['num_models']} models{extra})"


def _reference_notes(board: dict) -> list[tuple[str, str]]:
    """(origin, what it means) for each kind of reference row the board holds."""
    origins = {r["origin"] for r in board["rows"] if r["reference"]}
    notes = []
    if PUBLISHED_NOTE in origins:
        notes.append((PUBLISHED_NOTE, "are published scores, copied from their sources (CMI x 100 only)."))
    if CEILING_NOTE in origins:
        notes.append((CEILING_NOTE, "are not measures: the gap on one random half of the test set scored as a "
                      "measure of the gap on the other half (gap noise ceiling: how well any measure could do, given "
                      "how noisily the gaps are measured), or the other training seeds' gaps as measures of a "
                      "replicate's gaps (replicate gap ceiling: how much of the gap the hyperparameters set)."))
    return notes


def _provenance_text(p: dict) -> str:
    git = p["pgdl_bench"].get("git")
    commit = f", commit {git['commit'][:12]}{' (modified)' if git.get('dirty') else ''}" if git else ""
    return (f"Computed by pgdl-bench {p['pgdl_bench']['version']}{commit} with torch {p['torch']}, numpy "
            f"{p['numpy']} on {p['device']}, {p['date']}; each measure's version, code hash and parameters "
            "are in leaderboard.json (provenance).")


def _not_scored(entry: dict) -> str:
    parts = []
    if entry.get("failed_models"):
        parts.append(f"{entry['failed_models']} of {entry['num_models']} models failed")
    if entry.get("missing_models"):
        parts.append(f"{entry['missing_models']} of {entry['num_models']} not computed")
    return "not scored (" + ", ".join(parts) + ")" if parts else "not scored"


def _mean_text(row: dict, key: str, digits: int = 2) -> str:
    value = row.get(key)
    if value is not None and key == "mean_cmi_x100" and not row["reference"]:
        return _pm_text(value, row["mean_cmi_x100_interval"], digits)
    if value is not None:
        return _fmt(value, digits)
    if key == "mean_cmi_x100" and row.get("published_mean_x100") is not None:
        tasks = ", ".join(row["published_mean_tasks"])
        return f"({_fmt(row['published_mean_x100'])} published over {tasks})"
    return "-"


def _sign_text(row: dict) -> str:
    return "" if row["sign"] is None else f"{row['sign']:+d}"


# -- Markdown -------------------------------------------------------------------------------------


def _md(text: str) -> str:
    """Text for a Markdown table cell, shown literally: on one line, ``<``, ``>`` and entity-like ``&``
    escaped as HTML entities, ``|``, ``*``, ``_`` (at word edges) and backticks backslash-escaped."""
    text = " ".join(str(text).split())
    text = re.sub(r"&(?=#?\w+;)", "&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([|*`\\\[\]])", r"\\\1", text)
    return re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", text)


def to_markdown(board: dict) -> str:
    tasks = [t["name"] for t in board["tasks"]]
    lines = ["# Leaderboard", ""]
    described = ", ".join(_md(_task_text(t)) for t in board["tasks"])
    lines += [f"Tasks: {described or 'none'}.", "", _md(board["score_note"]), ""]
    for origin, note in _reference_notes(board):
        lines += [f"Rows marked *{origin}* {note}", ""]
    for task, c in board.get("noise_ceiling", {}).items():
        if c.get("best_measure"):
            b = c["best_measure"]
            lines += [_md(f"On {task}, the best measure ({b['measure']}, CMI x100 {b['cmi'] * 100:.2f}) reaches "
                          f"{b['fraction_of_ceiling']:.2f} of the gap noise ceiling ({c['cmi'] * 100:.2f})."), ""]
    if board.get("provenance"):
        lines += [_md(_provenance_text(board["provenance"])), ""]
    lines += [_md(f"vs best: {board['uncertainty']['test']}."), ""]
    header = ["#", "measure", "sign", *[f"{t} CMI x100" for t in tasks], "mean CMI x100", "vs best", "mean tau",
              "mean psi", "mean robust sign-error", "origin", "source"]
    lines.append("| " + " | ".join(_md(h) for h in header) + " |")
    lines.append("|" + "|".join("---:" if h in ("#", "sign") or "CMI" in h or h.startswith("mean") else "---"
                                for h in header) + "|")
    for row in board["rows"]:
        origin = f"*{row['origin']}*" if row["reference"] else "computed"
        cells = [str(row["rank"]), _md(row["measure"]), _sign_text(row),
                 *[_md(_cell_text(row, t)) for t in tasks],
                 _md(_mean_text(row, "mean_cmi_x100")), _versus_text(row), _mean_text(row, "mean_kendall_tau", 3),
                 _mean_text(row, "mean_psi", 3), _mean_text(row, "mean_robust_sign_error", 3), origin,
                 _md(row["source"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# -- CSV ------------------------------------------------------------------------------------------


def _csv_num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value) -> str:
    """A text cell that a spreadsheet will not run: a leading = + - @ (a formula) gets an apostrophe."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_header(tasks: list[str]) -> list[str]:
    head = ["rank", "measure", "reference", "origin", "sign", "mean_cmi_x100", "mean_kendall_tau", "mean_psi",
            "tasks_scored"]
    for t in tasks:
        head += [f"{t}:cmi_x100", f"{t}:kendall_tau", f"{t}:psi", f"{t}:failed_models", f"{t}:missing_models"]
    extra = ["mean_cmi_x100_low", "mean_cmi_x100_high", "tied_with_best", "p_value_vs_best", "mean_robust_sign_error"]
    for t in tasks:
        extra += [f"{t}:repeats", f"{t}:cmi_x100_low", f"{t}:cmi_x100_high", f"{t}:robust_sign_error"]
    return [_csv_text(h) for h in head] + ["source"] + [_csv_text(h) for h in extra]


def to_csv(board: dict) -> str:
    tasks = [t["name"] for t in board["tasks"]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(csv_header(tasks))
    for row in board["rows"]:
        out = [row["rank"], _csv_text(row["measure"]), "true" if row["reference"] else "false", _csv_text(row["origin"]),
               "" if row["sign"] is None else row["sign"], _csv_num(row["mean_cmi_x100"]),
               _csv_num(row["mean_kendall_tau"]), _csv_num(row["mean_psi"]), row["tasks_scored"]]
        for t in tasks:
            e = row["tasks"][t]
            out += [_csv_num(e["cmi_x100"]), _csv_num(e["kendall_tau"]), _csv_num(e["psi"]),
                    _csv_text(e.get("failed_models", "")), _csv_text(e.get("missing_models", ""))]
        bounds = row["mean_cmi_x100_interval"] or [None, None]
        comparison = row["comparison_with_best"]
        out += [_csv_text(row["source"]), _csv_num(bounds[0]), _csv_num(bounds[1]),
                "" if row["tied_with_best"] is None else str(row["tied_with_best"]).lower(),
                "" if comparison is None else _csv_num(comparison["p_value"]), _csv_num(row["mean_robust_sign_error"])]
        for t in tasks:
            e = row["tasks"][t]
            task_bounds = (e.get("intervals") or {}).get("cmi_x100") or [None, None]
            out += [e.get("repeats", ""), _csv_num(task_bounds[0]), _csv_num(task_bounds[1]),
                    _csv_num(e["robust_sign_error"])]
        writer.writerow(out)
    return buf.getvalue()


# -- plots ----------------------------------------------------------------------------------------


def plot_task(task: str, keys: list[str], gaps: np.ndarray, rows: list[dict], cells: dict[str, Cell],
              dpi: int = 90) -> bytes:
    """PNG of a grid of small scatter plots, one per computed measure: value against generalization gap.

    Figures are made without pyplot (Agg canvas, no global state); titles are plain text (no mathtext).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [r["measure"] for r in rows if not r["reference"]]
    ncols = max(1, min(6, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    height = 1.9 * nrows + 0.5  # inches: rows of 1.9 (two title lines, the axes, tick labels), the suptitle
    fig = Figure(figsize=(2.1 * ncols, height), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.suptitle(f"{task}: measure (x) against generalization gap (y)", fontsize=9, parse_math=False)
    if not names:
        fig.text(0.5, 0.5, "no computed measures", ha="center", va="center", parse_math=False)
    for i, name in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        cell = cells[name]
        short = name if len(name) <= 30 else name[:29] + "…"
        if cell.values is not None:
            x = np.array([cell.values[k] for k in keys])
            ax.scatter(x, gaps, s=6, color="#1f77b4", linewidths=0)
            tau = cell.scores["kendall_tau"]
            tau_text = f"tau = {tau:+.2f}" if math.isfinite(tau) else "tau undefined"
            ax.set_title(f"{short}\n{tau_text}", fontsize=7, parse_math=False)
        else:
            ax.set_title(f"{short}\nnot scored", fontsize=7, parse_math=False)
            ax.text(0.5, 0.5, f"{cell.failed + cell.missing} of {cell.num_models}\nmodels failed", ha="center",
                    va="center", fontsize=7, transform=ax.transAxes, parse_math=False)
        ax.tick_params(labelsize=5, length=2, pad=1)
        ax.xaxis.get_offset_text().set_fontsize(5)
        ax.yaxis.get_offset_text().set_fontsize(5)
        ax.locator_params(nbins=4)
    fig.subplots_adjust(left=0.3 / (2.1 * ncols), right=1 - 0.1 / (2.1 * ncols), bottom=0.2 / height,
                        top=1 - 0.85 / height, wspace=0.35, hspace=0.6)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


# -- HTML -----------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f0f0f0; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="descending"] .arrow::after { content: " \\25BC"; }
th[aria-sort="ascending"] .arrow::after { content: " \\25B2"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.na { color: #a33; font-size: 11px; }
td.source { font-size: 11px; color: #555; max-width: 28em; }
tr.reference td { background: #fff8e1; font-style: italic; }
tr.tied td, span.tied { background: #e8f5e9; }
.badge { font-size: 10px; background: #f0c040; color: #000; border-radius: 3px; padding: 0 4px; font-style: normal; }
img.plot { max-width: 100%; border: 1px solid #ddd; }
"""

_JS = """
(function () {
  var table = document.getElementById("leaderboard");
  var body = table.tBodies[0];
  var current = {index: -1, dir: 0};
  function value(row, index, type) {
    var raw = row.cells[index].getAttribute("data-value");
    if (raw === null || raw === "") { return null; }
    return type === "num" ? parseFloat(raw) : raw;
  }
  function sortBy(th) {
    var index = th.cellIndex;
    var type = th.getAttribute("data-type");
    var dir = current.index === index ? -current.dir : (type === "num" ? -1 : 1);
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var va = value(a, index, type), vb = value(b, index, type);
      if (va === null || vb === null) { return (va === null) - (vb === null); }
      if (type === "num") { return dir * (va - vb); }
      return dir * (va < vb ? -1 : va > vb ? 1 : 0);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir < 0 ? "descending" : "ascending");
    current = {index: index, dir: dir};
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    if (th.getAttribute("data-type")) { th.addEventListener("click", function () { sortBy(th); }); }
  });
})();
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _td(text: str, value=None, cls: str = "", title: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    if value is not None:
        attrs += f' data-value="{_e(value)}"'
    else:
        attrs += ' data-value=""'
    if title:
        attrs += f' title="{_e(title)}"'
    return f"<td{attrs}>{_e(text)}</td>"


def to_html(board: dict, plots: dict[str, bytes]) -> str:
    tasks = [t["name"] for t in board["tasks"]]
    script_hash = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    heads = [("#", "num"), ("measure", "text"), ("sign", "num"),
             *[(f"{t} CMI x100", "num") for t in tasks],
             ("mean CMI x100", "num"), ("vs best", "num"), ("mean tau", "num"), ("mean psi", "num"),
             ("mean robust sign-error", "num"), ("origin", "text"), ("source", "text")]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">',
           "<title>pgdl-bench leaderboard</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>Leaderboard</h1>"]
    described = ", ".join(_task_text(t) for t in board["tasks"])
    out.append(f"<p>Tasks: {_e(described or 'none')}.</p>")
    note = "".join(f' Rows marked <span class="badge">{_e(origin)}</span> {_e(text)}'
                   for origin, text in _reference_notes(board))
    out.append(f"<p>{_e(board['score_note'])} Click a column header to sort.{note}</p>")
    if board.get("provenance"):
        out.append(f"<p>{_e(_provenance_text(board['provenance']))}</p>")
    out.append(f"<p>vs best: {_e(board['uncertainty']['test'])}; rows tied with the best are "
               '<span class="tied">highlighted</span>.</p>')
    out.append('<table id="leaderboard"><thead><tr>')
    for label, kind in heads:
        out.append(f'<th data-type="{kind}" scope="col">{_e(label)}<span class="arrow"></span></th>')
    out.append("</tr></thead><tbody>")
    for row in board["rows"]:
        cls = ' class="reference"' if row["reference"] else (' class="tied"' if row["tied_with_best"] else "")
        out.append(f'<tr{cls} data-reference="{"true" if row["reference"] else "false"}">')
        out.append(_td(str(row["rank"]), row["rank"], "num"))
        out.append(_td(row["measure"], row["measure"], title=row.get("description", "")))
        out.append(_td(_sign_text(row), row["sign"], "num"))
        for t in tasks:
            e = row["tasks"][t]
            title = "" if row["reference"] else (
                f"tau {_fmt(e['kendall_tau'], 3)}, psi {_fmt(e['psi'], 3)}" if e["scored"] else _not_scored(e))
            out.append(_td(_cell_text(row, t), e["cmi_x100"], "num" if e["scored"] else "na", title))
        out.append(_td(_mean_text(row, "mean_cmi_x100"), row["mean_cmi_x100"], "num"))
        comparison = row["comparison_with_best"]
        out.append(_td(_versus_text(row), None if comparison is None else comparison["p_value"]))
        out.append(_td(_mean_text(row, "mean_kendall_tau", 3), row["mean_kendall_tau"], "num"))
        out.append(_td(_mean_text(row, "mean_psi", 3), row["mean_psi"], "num"))
        out.append(_td(_mean_text(row, "mean_robust_sign_error", 3), row["mean_robust_sign_error"], "num"))
        if row["reference"]:
            out.append(f'<td data-value="{_e(row["origin"])}"><span class="badge">{_e(row["origin"])}</span></td>')
        else:
            out.append(_td("computed", "computed"))
        out.append(_td(row["source"], row["source"], "source"))
        out.append("</tr>")
    out.append("</tbody></table>")
    for t in tasks:
        if t in plots:
            data = base64.b64encode(plots[t]).decode()
            out.append(f"<h2>{_e(t)}</h2>")
            out.append(f'<img class="plot" alt="{_e("measures against the generalization gap on " + t)}" '
                       f'src="data:image/png;base64,{data}">')
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out) + "\n"


# -- writing everything ---------------------------------------------------------------------------


def write_all(board: dict, out_dir: str | Path, plots: dict[str, bytes]) -> list[Path]:
    """Write leaderboard.{md,csv,json,html} and plots/<task>.png; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task, png in plots.items():
        path = out_dir / "plots" / f"{safe_filename(task)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        written.append(path)
    for name, text in (("leaderboard.md", to_markdown(board)), ("leaderboard.csv", to_csv(board)),
                       ("leaderboard.json", json.dumps(board, indent=1, allow_nan=False) + "\n"),
                       ("leaderboard.html", to_html(board, plots))):
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def make_leaderboard(runs, store, names: list[str], out_dir: str | Path, measure_info: dict[str, dict],
                     dpi: int = 90, ceilings: dict[str, dict] | None = None, provenance: dict | None = None,
                     replicate_sets: dict[str, dict] | None = None) -> tuple[dict, list[Path]]:
    """Collect, build, plot and write a leaderboard into ``out_dir``; returns (the dict, files written)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = ScoreCache(out_dir)
    computed = collect(runs, store, names, out_dir, cache)
    replicate_ceilings = {member: {**per, "set": name} for name, entry in (replicate_sets or {}).items()
                          if "replicate_ceiling" in entry
                          for member, per in zip(entry["members"], entry["replicate_ceiling"]["per_replicate"])}
    board = build(computed.tasks, computed.cells, measure_info, comparisons=compare_with_best(computed, cache),
                  ceilings=ceilings, replicate_ceilings=replicate_ceilings)
    for t in board["tasks"]:
        t["plot"] = f"plots/{safe_filename(t['name'])}.png"
        if provenance and t["name"] in provenance.get("tasks", {}):
            info = provenance["tasks"][t["name"]]
            t["fingerprint"], t["pinned"] = info["fingerprint"], info.get("pinned")
    if ceilings:
        board["noise_ceiling"] = {name: {**_finite_floats(c), "best_measure": best_of_ceiling(board, name, c)}
                                  for name, c in ceilings.items()}
    if replicate_sets:
        scores = _scores_by_task(board)
        board["replicate_sets"] = {
            name: _finite_floats({**entry, "measures": summarize_replicates(scores, entry["members"])})
            for name, entry in replicate_sets.items()}
    if provenance:
        board["provenance"] = provenance
    plots = {}
    for task in computed.tasks:
        keys, gaps = computed.gaps[task.name]
        cells = {n: computed.cells[n][task.name] for n in names}
        order = [r["measure"] for r in board["rows"] if not r["reference"]]
        key = cache.plot_key(computed.fingerprints[task.name], task.name, dpi, keys, gaps.tolist(),
                             [(n, cells[n].values, cells[n].failed, cells[n].missing) for n in order])
        png = out_dir / "plots" / f"{safe_filename(task.name)}.png"
        if cache.plots.get(task.name) == key and png.is_file():
            plots[task.name] = png.read_bytes()
        else:
            plots[task.name] = plot_task(task.name, keys, gaps, board["rows"], cells, dpi=dpi)
        cache.used_plots[task.name] = key
    written = write_all(board, out_dir, plots)
    cache.save()
    return board, written
