"""``.predict`` files in the competition's form: JSON ``{"model_<id>": float, ...}``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from task_loaders import TaskFormatError, read_json

from ..scores.scoring import PredictionError, check_unique_models


def write_predict(path: str | os.PathLike, predictions: dict[str, float]) -> Path:
    """Write predictions keyed ``model_<id>``; non-finite values are refused (JSON has no NaN)."""
    path = Path(path)
    out = {}
    for key, value in predictions.items():
        if not math.isfinite(value):
            raise PredictionError(f"{path}: {key} has a non-finite prediction {value!r}")
        out[key if str(key).startswith("model_") else f"model_{key}"] = float(value)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(out, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise PredictionError(f"{path}: cannot write ({exc.strerror or exc}); choose a writable --out") from None
    return path


def read_predict(path: str | os.PathLike) -> dict:
    """Read a ``.predict`` file; values are checked against the task when scored.

    A key written twice (``"4"`` twice, or ``"4"`` beside ``"model_4"``) is refused: JSON would keep
    the last one silently. The file is read as a task's JSON files are (regular file, bounded size).
    """
    path = Path(path)
    try:
        data = read_json(path)
    except TaskFormatError as exc:
        raise PredictionError(str(exc)) from None
    if not isinstance(data, dict):
        raise PredictionError(f"{path}: expected an object {{\"model_<id>\": value, ...}}")
    check_unique_models(data, str(path))
    return data
