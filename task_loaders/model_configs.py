"""``model_configs.json``: each model's hyperparameters and metrics, validated as a complete grid.

Values are compared canonically: real public data stores ``convwidth`` as 256.0 in one place and 256
in another, and the official scorer's string comparison silently drops such pairs. Here 256, 256.0
and "256" are one value; booleans, None and non-numeric strings stay distinct from numbers.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import TaskFormatError
from .json_files import read_json

# A model id names a folder model_<id> beside model_configs.json and is part of job keys: no paths.
PLAIN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def canonical(value: Any) -> tuple:
    """A hashable key under which equal hyperparameter values coincide (256 == 256.0 == "256")."""
    if isinstance(value, bool) or value is None:
        return ("const", value)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return ("str", value)
    elif isinstance(value, (list, tuple)):
        return ("list",) + tuple(canonical(v) for v in value)
    else:
        raise TypeError(f"unsupported hyperparameter value {value!r}")
    if math.isnan(number):
        return ("nan",)
    return ("num", number)


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    hparams: dict[str, Any]  # name -> value as stored
    train_acc: float
    test_acc: float

    @property
    def gap(self) -> float:
        return self.train_acc - self.test_acc


@dataclass(frozen=True)
class Grid:
    """The hyperparameter grid: names in file order, each name's possible values in file order."""

    names: tuple[str, ...]
    values: dict[str, tuple[Any, ...]]

    def index(self, name: str, value: Any) -> int:
        keys = [canonical(v) for v in self.values[name]]
        return keys.index(canonical(value))

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.values.values())


def read_model_configs(path: str | os.PathLike) -> tuple[Grid, dict[str, ModelRecord]]:
    """Parse and validate ``model_configs.json``; ids are the bare keys of the file ("0", "20", ...)."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise TaskFormatError(f"{path}: expected an object keyed by model id")
    grid = None
    records: dict[str, ModelRecord] = {}
    for key, entry in data.items():
        model_id = key[len("model_"):] if key.startswith("model_") else key
        if not PLAIN_ID.fullmatch(model_id):
            raise TaskFormatError(f"{path}: model id {key!r} is not a plain name (letters, digits, '_', '-', '.')")
        where = f"{path}: model {model_id}"
        if not isinstance(entry, dict) or not isinstance(entry.get("hparams"), dict):
            raise TaskFormatError(f"{where}: missing 'hparams'")
        metrics = entry.get("metrics")
        if not isinstance(metrics, dict):
            raise TaskFormatError(f"{where}: missing 'metrics'")
        accs = []
        for name in ("train_acc", "test_acc"):
            value = metrics.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                shown = repr(value) if len(repr(value)) < 40 else f"a {type(value).__name__} out of range"
                raise TaskFormatError(f"{where}: metric '{name}' must be an accuracy in [0, 1], got {shown}")
            accs.append(float(value))
        hparams = {}
        possible = {}
        for name, spec in entry["hparams"].items():
            if not isinstance(spec, dict) or "current_value" not in spec or "possible_values" not in spec:
                raise TaskFormatError(f"{where}: hyperparameter '{name}' needs 'current_value' and 'possible_values'")
            values = spec["possible_values"]
            if not isinstance(values, list) or not values:
                raise TaskFormatError(f"{where}: hyperparameter '{name}' has no possible values")
            try:
                keys = [canonical(v) for v in values]
                current = canonical(spec["current_value"])
            except (TypeError, OverflowError) as exc:
                raise TaskFormatError(f"{where}: hyperparameter '{name}': {str(exc)[:200]}") from None
            if len(set(keys)) != len(keys):
                raise TaskFormatError(f"{where}: hyperparameter '{name}' lists a value twice: {values!r}")
            if current not in keys:
                raise TaskFormatError(
                    f"{where}: hyperparameter '{name}' = {spec['current_value']!r} is not one of {values!r}"
                )
            hparams[name] = spec["current_value"]
            possible[name] = tuple(values)
        if grid is None:
            grid = Grid(tuple(possible), possible)
        else:
            if set(possible) != set(grid.names):
                raise TaskFormatError(
                    f"{where}: hyperparameters {sorted(possible)} differ from the other models' {sorted(grid.names)}"
                )
            for name in grid.names:
                if {canonical(v) for v in possible[name]} != {canonical(v) for v in grid.values[name]}:
                    raise TaskFormatError(
                        f"{where}: possible values of '{name}' {list(possible[name])} differ from "
                        f"the other models' {list(grid.values[name])}"
                    )
        if model_id in records:
            raise TaskFormatError(f"{path}: model id {model_id} appears twice")
        records[model_id] = ModelRecord(model_id, hparams, accs[0], accs[1])
    _check_complete(path, grid, records)
    return grid, records


def _check_complete(path: Path, grid: Grid, records: dict[str, ModelRecord]) -> None:
    cells: dict[tuple, str] = {}
    for model_id, record in records.items():
        cell = tuple(grid.index(n, record.hparams[n]) for n in grid.names)
        if cell in cells:
            setting = ", ".join(f"{n}={record.hparams[n]!r}" for n in grid.names)
            raise TaskFormatError(f"{path}: models {cells[cell]} and {model_id} share one grid cell ({setting})")
        cells[cell] = model_id
    if len(cells) != grid.size:
        for cell in itertools.product(*(range(len(grid.values[n])) for n in grid.names)):
            if cell not in cells:
                setting = ", ".join(f"{n}={grid.values[n][i]!r}" for n, i in zip(grid.names, cell))
                raise TaskFormatError(
                    f"{path}: incomplete hyperparameter grid: {len(cells)} of {grid.size} cells hold a model; "
                    f"no model has {setting}"
                )


def write_model_configs(path: str | os.PathLike, grid: Grid, records: dict[str, ModelRecord]) -> None:
    """Write ``model_configs.json`` in the competition's form."""
    out = {}
    for model_id, record in records.items():
        out[model_id] = {
            "hparams": {
                n: {"possible_values": list(grid.values[n]), "current_value": record.hparams[n]} for n in grid.names
            },
            "metrics": {"train_acc": record.train_acc, "test_acc": record.test_acc},
        }
    Path(path).write_text(json.dumps(out, indent=2) + "\n")
