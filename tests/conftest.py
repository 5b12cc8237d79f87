"""Shared fixtures: where the real PGDL toy task is, and writable copies of it to damage.

The toy task (the PGDL starting kit's ``sample_data/toy_data``, CC BY-NC) lives outside the
repository and must never be copied into it; tests that need it are skipped when it is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmark.data.zoo_builder import build_zoo
from task_loaders.pinned import pinned_zoo

REPO = Path(__file__).parents[1]
DEFAULT_TOY_TASK = REPO.parent / "shared" / "fixtures" / "pgdl_toy_data"
DEFAULT_MNIST = REPO.parent / "shared" / "fixtures" / "mnist10k"


def find_toy_task() -> Path | None:
    """``$PGDL_TOY_DATA`` if set, else ``../shared/fixtures/pgdl_toy_data`` beside the repository."""
    configured = os.environ.get("PGDL_TOY_DATA")
    path = Path(configured) if configured else DEFAULT_TOY_TASK
    return path if (path / "model_configs.json").is_file() else None


@pytest.fixture(scope="session")
def toy_task_path() -> Path:
    """The read-only PGDL toy task (18 MLPs on 3 features, 200 train / 100 test examples)."""
    path = find_toy_task()
    if path is None:
        where = os.environ.get("PGDL_TOY_DATA") or DEFAULT_TOY_TASK
        pytest.skip(
            f"PGDL toy task not found: {where} holds no model_configs.json; "
            "set PGDL_TOY_DATA to the starting kit's sample_data/toy_data folder"
        )
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The mnist10k fixture (10,000 real MNIST digits): ``$PGDL_MNIST`` or ``../shared/fixtures/mnist10k``."""
    path = Path(os.environ.get("PGDL_MNIST") or DEFAULT_MNIST)
    if not (path / "mnist10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST fixture not found: {path} has no mnist10k-images-idx3-ubyte.gz; set PGDL_MNIST")
    return path


def copy_writable(src: Path, dst: Path) -> Path:
    """Copy a folder tree with user-writable permissions (the fixture's files are read-only)."""
    for root, _, files in os.walk(src):
        target = dst / Path(root).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(root) / name, target / name)
    return dst


@pytest.fixture(scope="session")
def copy_tree():
    """``copy_writable`` for module- or session-scoped fixtures that build their own copies."""
    return copy_writable


@pytest.fixture
def toy_task_copy(toy_task_path: Path, tmp_path: Path) -> Path:
    """A writable copy of the toy task under ``tmp_path``, to damage in one test."""
    return copy_writable(toy_task_path, tmp_path / "toy_task")




@pytest.fixture(scope="session")
def embedded_zoo():
    """``embedded_zoo(name)``: the folder of an embedded default zoo (digits-bn, digits-nobn).

    The pinned copy shipped in the package (only read), else built into the tests' home (minutes).
    """
    def path(name: str) -> Path:
        pinned = pinned_zoo(name)
        return pinned if pinned is not None else build_zoo(name, progress=False)

    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_results_store(tmp_path_factory):
    """Keep the tests' results (and the processes they start) out of the user's ~/.cache/pgdl-bench."""
    home = tmp_path_factory.mktemp("pgdl_bench_home")
    previous = os.environ.get("PGDL_BENCH_HOME")
    os.environ["PGDL_BENCH_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("PGDL_BENCH_HOME", None)
    else:
        os.environ["PGDL_BENCH_HOME"] = previous
