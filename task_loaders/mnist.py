"""MNIST digits from IDX files: the full data set, or the 10,000-digit fixture ``mnist10k``.

Two layouts are read, told apart by the file names in the folder:

- the original four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``): 60,000 train and
  10,000 test digits, the official split;
- ``mnist10k-images-idx3-ubyte.gz`` and ``mnist10k-labels-idx1-ubyte.gz``: 10,000 real MNIST digits in
  a fixed random order and no split of their own. Here the first ``MNIST10K_TRAIN`` = 8,000 rows are the
  training split and the last 2,000 the test split (the order is a random permutation, so both are
  roughly stratified).

Without a folder the first of ``$PGDL_MNIST``, the repository's sibling ``../shared/fixtures/mnist10k``
and ``~/.cache/pgdl-bench/data/mnist`` that holds either layout is used. Pixels / 255, in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .datasets import FASHION_MNIST_FILES, Dataset, DatasetNotFound, _idx_files, _read_idx_split, _to_tensors

MNIST_ENV = "PGDL_MNIST"
MNIST10K_FILES = ("mnist10k-images-idx3-ubyte", "mnist10k-labels-idx1-ubyte")
MNIST10K_TRAIN = 8000


def _candidates() -> list[Path]:
    out = []
    if os.environ.get(MNIST_ENV):
        out.append(Path(os.environ[MNIST_ENV]))
    out.append(Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "mnist10k")
    out.append(Path.home() / ".cache" / "pgdl-bench" / "data" / "mnist")
    return out


def _mnist10k_files(folder: Path) -> tuple[Path, Path] | None:
    found = []
    for name in MNIST10K_FILES:
        path = next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def load_mnist(folder: str | os.PathLike | None = None) -> Dataset:
    """MNIST from ``folder`` (either layout of the module docstring), or from the default places."""
    candidates = [Path(folder)] if folder is not None else _candidates()
    for candidate in candidates:
        full = _idx_files(candidate)  # the same four standard names as Fashion-MNIST
        if full is not None:
            train = _read_idx_split(full["x_train"], full["y_train"])
            test = _read_idx_split(full["x_test"], full["y_test"])
            return _dataset(train, test, "official split")
        small = _mnist10k_files(candidate)
        if small is not None:
            images, labels = _read_idx_split(*small)
            if len(labels) <= MNIST10K_TRAIN:
                raise DatasetNotFound(f"{small[1]}: {len(labels)} digits, need more than {MNIST10K_TRAIN} "
                                      "for the mnist10k train/test split")
            return _dataset((images[:MNIST10K_TRAIN], labels[:MNIST10K_TRAIN]),
                            (images[MNIST10K_TRAIN:], labels[MNIST10K_TRAIN:]), "mnist10k: first 8000 train")
    where = str(candidates[0]) if folder is not None else "any of " + ", ".join(map(str, candidates))
    raise DatasetNotFound(
        f"MNIST not found in {where}: pass a folder with the four MNIST IDX files "
        f"({', '.join(FASHION_MNIST_FILES.values())}, each optionally .gz) or with "
        f"{MNIST10K_FILES[0]}.gz and {MNIST10K_FILES[1]}.gz, or set ${MNIST_ENV} to it")


def _dataset(train, test, split: str) -> Dataset:
    x_train, y_train = _to_tensors(train[0][:, None], train[1], 255)
    x_test, y_test = _to_tensors(test[0][:, None], test[1], 255)
    return Dataset("mnist", x_train, y_train, x_test, y_test, 10, f"pixels / 255, in [0, 1]; {split}")


def flip_labels(labels: np.ndarray, fraction: float, num_classes: int, seed: int) -> np.ndarray:
    """A copy of ``labels`` where round(fraction * N) entries, chosen at random, get another class.

    The new class is drawn uniformly from the other ``num_classes - 1`` classes, so every chosen label
    really changes (symmetric label noise as in Nakkiran et al., "Deep Double Descent", ICLR 2020).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label noise must be a fraction in [0, 1], got {fraction!r}")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng([seed, 2])
    chosen = rng.choice(len(labels), int(round(fraction * len(labels))), replace=False)
    out = labels.copy()
    out[chosen] = (labels[chosen] + rng.integers(1, num_classes, len(chosen))) % num_classes
    return out
