"""The published reference scores of measures on the official PGDL tasks, and which folder is which task.

The numbers are data, not code: ``data/reference_scores.json`` (citations, per-task CMI x 100, a mean
where only the mean is published, and the documented model count of each official task), read once
through ``importlib.resources`` and checked by ``load_reference_data``: a malformed entry fails at import
with one line naming the file and the entry, never as a wrong row in a leaderboard.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources

from ..data.pgdl_data import OFFICIAL_TASK_NAME

DATA_FILE = "reference_scores.json"


class ReferenceDataError(ValueError):
    """The reference scores file is malformed (a packaging error, not the user's input)."""


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


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReferenceDataError(f"{where}: not a finite number: {value!r}")
    return float(value)


def load_reference_data(text: str, where: str = DATA_FILE) -> tuple[tuple[Published, ...], dict[str, int]]:
    """(the published rows, model count per official task) from the JSON text of a reference scores file.

    Checked: every row has a unique non-empty name, a citation of the file's ``citations``, and either
    per-task values or a mean over named tasks; every task is one with a documented model count; every
    number is finite (CMI x 100 in [0, 100], counts positive integers).
    """
    try:
        data = json.loads(text)
        citations, entries, counts = data["citations"], data["scores"], data["model_counts"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReferenceDataError(f"{where}: not a reference scores file ({type(exc).__name__}: {exc})") from None
    if not isinstance(counts, dict) or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                               for n in counts.values()):
        raise ReferenceDataError(f"{where}: model_counts must map task ids to positive integers")
    rows, names = [], set()
    for i, entry in enumerate(entries):
        label = f"{where}: scores[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "citation", "cmi_x100", "mean_x100", "mean_tasks"}:
            raise ReferenceDataError(f"{label}: an object with name, citation and cmi_x100 or mean_x100/mean_tasks")
        name, cite = entry.get("name"), entry.get("citation")
        if not isinstance(name, str) or not name.strip() or name in names:
            raise ReferenceDataError(f"{label}: missing, empty or repeated name {name!r}")
        if cite not in citations or not str(citations[cite]).strip():
            raise ReferenceDataError(f"{label} ({name}): unknown citation {cite!r}")
        per_task = entry.get("cmi_x100", {})
        mean_tasks = entry.get("mean_tasks", [])
        if not isinstance(per_task, dict) or not isinstance(mean_tasks, list):
            raise ReferenceDataError(f"{label} ({name}): cmi_x100 must be an object and mean_tasks a list")
        for task in [*per_task, *mean_tasks]:
            if task not in counts:
                raise ReferenceDataError(f"{label} ({name}): {task!r} is not an official task of model_counts")
        values = {task: _number(v, f"{label} ({name}) {task}") for task, v in per_task.items()}
        mean = None if entry.get("mean_x100") is None else _number(entry["mean_x100"], f"{label} ({name}) mean_x100")
        if any(not 0 <= v <= 100 for v in [*values.values(), *([mean] if mean is not None else [])]):
            raise ReferenceDataError(f"{label} ({name}): a CMI x 100 outside [0, 100]")
        if not values and (mean is None or not mean_tasks) or (mean is None) != (not mean_tasks):
            raise ReferenceDataError(f"{label} ({name}): give per-task cmi_x100, or mean_x100 with its mean_tasks")
        names.add(name)
        rows.append(Published(name, citations[cite], values, mean, tuple(mean_tasks)))
    return tuple(rows), dict(counts)


PUBLISHED_SCORES, DOCUMENTED_MODEL_COUNTS = load_reference_data(
    resources.files(__package__).joinpath("data").joinpath(DATA_FILE).read_text(encoding="utf-8"))


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
