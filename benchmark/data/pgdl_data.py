"""The official PGDL data: download, check, unpack (``pgdl-bench data pgdl``), and find its tasks.

The zips and their sizes are those of the PGDL README (google-research/google-research, ``pgdl/``):

    public       public_data.zip      8.8 GB   tasks 1, 2
    phase1       phase_one_data.zip   2.5 GB   tasks 4, 5   (the public leaderboard)
    phase2       phase_two_data.zip   9.0 GB   tasks 6-9    (the private leaderboard)

Each unpacks to ``DIR/<zip stem>/`` (``public_data/input_data/<task>`` beside
``public_data/reference_data/<task>``, which ``task_loaders.load_task`` reads as one task). A zip is
first downloaded completely (resumable, see ``benchmark.data.download``), then unpacked atomically with
every member's CRC checked (``benchmark.data.safe_unzip``), then deleted: ``DIR/<stem>/`` exists only
when all of it is there. A corrupt zip is deleted too, so that a rerun downloads it again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from task_loaders import TaskFormatError
from task_loaders.task import find_metrics
from task_loaders.zoo import bench_home

from .download import DownloadError, download, free_bytes
from .safe_unzip import UnzipError, safe_unzip, unpacked_size

OFFICIAL_URL = "http://storage.googleapis.com/gresearch/pgdl"


@dataclass(frozen=True)
class Archive:
    suite: str
    filename: str
    documented_gb: float  # the README's size
    tasks: str

    @property
    def stem(self) -> str:
        return self.filename.removesuffix(".zip")


ARCHIVES = (
    Archive("public", "public_data.zip", 8.8, "tasks 1 and 2"),
    Archive("phase1", "phase_one_data.zip", 2.5, "tasks 4 and 5"),
    Archive("phase2", "phase_two_data.zip", 9.0, "tasks 6 to 9"),
)
SUITES = {a.suite: (a,) for a in ARCHIVES} | {"all": ARCHIVES}


class DataError(Exception):
    """A failed ``data pgdl`` step: one line."""


def default_data_dir() -> Path:
    """``$PGDL_BENCH_HOME/pgdl``, else ``~/.cache/pgdl-bench/pgdl``."""
    return bench_home() / "pgdl"


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def fetch_archive(archive: Archive, out: Path, base_url: str = OFFICIAL_URL, progress: bool = True,
                  keep_zip: bool = False) -> Path:
    """Download, check and unpack one zip into ``out/<stem>``; a no-op when that folder exists."""
    dest = out / archive.stem
    if dest.is_dir():
        return dest
    out.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{archive.filename}"
    zip_path = out / archive.filename

    def check_space(remaining: int, total: int) -> None:
        # the zip's remaining bytes, and at least as much again to unpack it (checked exactly later)
        need, free = remaining + total, free_bytes(out)
        if free < need:
            raise DataError(f"not enough disk space in {out}: {archive.filename} needs about {_gb(need)} "
                            f"({_gb(remaining)} still to download, then at least {_gb(total)} to unpack), "
                            f"{_gb(free)} free; free some space or pass --out DIR on a larger disk")

    try:
        download(url, zip_path, check_space=check_space, progress=progress)
    except DownloadError as exc:
        raise DataError(str(exc)) from None
    try:
        need, free = unpacked_size(zip_path), free_bytes(out)
        if free < need:
            raise DataError(f"not enough disk space in {out} to unpack {archive.filename}: it needs {_gb(need)}, "
                            f"{_gb(free)} free (the download is kept; rerun once there is space)")
        safe_unzip(zip_path, dest, progress=progress)
    except UnzipError as exc:
        zip_path.unlink(missing_ok=True)  # a corrupt download: the next run fetches it again
        raise DataError(f"{exc}; deleted the zip, rerun to download it again") from None
    if not keep_zip:
        zip_path.unlink(missing_ok=True)
    return dest


# -- finding the tasks --------------------------------------------------------------------------

# an official task folder: task<N> with an optional _v<digits> suffix, any case (the leaderboard uses it too)
OFFICIAL_TASK_NAME = re.compile(r"task([124-9])(?:_v\d+)?", re.IGNORECASE)
COMPETITION_ORDER = ("task1", "task2", "task4", "task5", "task6", "task7", "task8", "task9")


def _is_task(folder: Path) -> bool:
    if not any(p.is_dir() and p.name.startswith("model_") for p in folder.iterdir()):
        return False
    try:
        find_metrics(folder)
    except TaskFormatError:
        return False
    return True


def competition_key(folder: Path):
    """Sort key: the official tasks in the competition's order (1, 2, 4, ..., 9), then others by name."""
    match = OFFICIAL_TASK_NAME.fullmatch(folder.name)
    if match:
        return (0, COMPETITION_ORDER.index(f"task{match.group(1)}"), folder.name.lower(), str(folder))
    return (1, 0, folder.name.lower(), str(folder))


def find_tasks(root: str | os.PathLike) -> list[Path]:
    """Every task folder under ``root`` (one with ``model_*`` folders and a ``model_configs.json`` beside it
    or in the sibling ``reference_data`` tree), in the competition's order. Hidden folders (a zip being
    unpacked) and ``reference_data`` trees are skipped; a task's own folders are not searched."""
    root = Path(root)
    found = []
    visited = set()
    for current, dirs, _ in os.walk(root, followlinks=True):
        here = Path(current)
        real = os.path.realpath(here)
        if real in visited:  # a link back up the tree
            dirs[:] = []
            continue
        visited.add(real)
        if here != root and _is_task(here):
            found.append(here)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "reference_data"
                         and not d.startswith("model_") and not d.startswith("dataset_"))
    if root.is_dir() and _is_task(root):
        found.append(root)
    return sorted(found, key=competition_key)
