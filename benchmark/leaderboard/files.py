"""Where a leaderboard's files go: a safe file name for any measure or task name, and the paths under the folder."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote


def safe_filename(name: str) -> str:
    """A file name for any measure or task name: percent-encoding of everything but letters, digits and
    ``_.-~:+=,@`` (so ``/`` cannot make folders, nor ``..`` leave the output folder). Names made of those
    characters only, which is every built-in measure, come back unchanged. Injective."""
    text = quote(name, safe=":+=,@")
    if text.startswith("."):
        text = "%2E" + text[1:]
    return text or "%"


PREDICTIONS = "predictions"  # the leaderboard folder's folder of .predict files


def repeat_file(name: str, task: str, repeat: int, folder: str | Path = PREDICTIONS) -> Path:
    """``<folder>/<measure>/<task>.predict`` (repeat 0) or ``<folder>/<measure>/repeat-<k>/<task>.predict``."""
    folder = Path(folder) / safe_filename(name)
    return (folder / f"repeat-{repeat}" if repeat else folder) / f"{safe_filename(task)}.predict"


def plot_file(task: str) -> str:
    """``plots/<task>.png``, relative to the leaderboard folder."""
    return f"plots/{safe_filename(task)}.png"
