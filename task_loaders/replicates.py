"""Replicate sets: one zoo recipe trained with several training seeds, side by side.

Layout: ``DIR/replicates.json`` (``{"recipe": NAME, "seeds": [S, ...], "members": [FOLDER, ...]}``) and
one complete zoo task folder per seed, ``DIR/<recipe>-seed<S>/``: the same grid, data and schedule,
differing only in the training seed. Each member is an ordinary PGDL task; scores over a set are
reported per member and as mean and spread over members.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import TaskFormatError

MANIFEST = "replicates.json"


@dataclass(frozen=True)
class ReplicateSet:
    path: Path
    recipe: str
    seeds: tuple[int, ...]
    members: tuple[Path, ...]  # task folders, in seed order

    @property
    def name(self) -> str:
        return self.path.resolve().name


def member_name(recipe: str, seed: int) -> str:
    return f"{recipe}-seed{seed}"


def write_manifest(path: str | os.PathLike, recipe: str, seeds: list[int]) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    manifest = {"recipe": recipe, "seeds": list(seeds), "members": [member_name(recipe, s) for s in seeds]}
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def read_replicate_set(path: str | os.PathLike) -> ReplicateSet | None:
    """The replicate set in ``path``, or None when ``path`` holds no ``replicates.json``."""
    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        recipe, seeds, members = str(data["recipe"]), [int(s) for s in data["seeds"]], list(data["members"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TaskFormatError(f"{manifest}: not a replicate-set manifest ({exc})") from None
    if len(seeds) != len(members) or len(set(seeds)) != len(seeds) or not seeds:
        raise TaskFormatError(f"{manifest}: expected one member folder per distinct seed")
    folders = []
    for member in members:
        folder = path / str(member)
        if Path(str(member)).name != str(member) or not (folder / "model_configs.json").is_file():
            raise TaskFormatError(f"{folder}: replicate listed in {manifest} is missing or not finished")
        folders.append(folder)
    return ReplicateSet(path, recipe, tuple(seeds), tuple(folders))
