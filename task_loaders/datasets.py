"""Image classification data sets for in-house zoos: scikit-learn's digits, Fashion-MNIST, CIFAR-10.

Every loader returns a ``Dataset``: float32 NCHW images scaled to [0, 1] and int64 labels, plus a
one-line note of the scaling. Nothing is downloaded: digits ships with scikit-learn, Fashion-MNIST
comes from Debian's ``dataset-fashion-mnist`` package (or any folder of its four IDX files) and
CIFAR-10 from the "python version" archive that the user extracts; a missing data set raises
``DatasetNotFound`` saying exactly how to get it.

The formats are decoded here, not by a framework: IDX by its header (magic number, big-endian
dimensions) with ``numpy.frombuffer``; CIFAR-10's pickled batches by an unpickler that can only
rebuild numpy arrays, because ``pickle.load`` on a downloaded file runs whatever code it names.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import TaskFormatError, UsageError

DATASETS: dict[str, str] = {
    "digits": "scikit-learn's bundled 8x8 grey handwritten digits, 1000 train / 797 test, 10 classes",
    "fashion-mnist": "Zalando's 28x28 grey clothing images, 60000 train / 10000 test, 10 classes (IDX files)",
    "cifar10": "32x32 RGB photographs, 50000 train / 10000 test, 10 classes (CIFAR-10 python batches)",
    "mnist": "28x28 grey handwritten digits, 60000 / 10000 (IDX files), or the mnist10k fixture's 8000 / 2000",
}

# The digits split: DIGITS_TRAIN_PER_CLASS images of every class (chosen with DIGITS_SPLIT_SEED)
# train, the other 797 test; both keep scikit-learn's order.
DIGITS_TRAIN_PER_CLASS = 100
DIGITS_SPLIT_SEED = 0

FASHION_MNIST_ENV = "PGDL_FASHION_MNIST"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_FOLDER = "cifar-10-batches-py"  # what cifar-10-python.tar.gz extracts to


class DatasetNotFound(TaskFormatError):
    """A data set's files are not where they were looked for; the message says how to get them."""


@dataclass(eq=False)
class Dataset:
    """A train and a test split: ``x`` float32 NCHW, ``y`` int64 class indices in [0, num_classes)."""

    name: str
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    num_classes: int
    scaling: str

    def __post_init__(self):
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x.dtype != torch.float32 or x.dim() != 4:
                raise ValueError(f"{self.name}: x_{split} must be float32 NCHW, got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
                raise ValueError(
                    f"{self.name}: y_{split} must be int64 with one label per image, "
                    f"got {y.dtype} {tuple(y.shape)} for {len(x)} images"
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise ValueError(f"{self.name}: y_{split} holds labels outside [0, {self.num_classes})")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"{self.name}: train images {tuple(self.x_train.shape[1:])} and "
                f"test images {tuple(self.x_test.shape[1:])} differ in shape"
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One image's shape as Keras writes it, (height, width, channels)."""
        _, channels, height, width = self.x_train.shape
        return (int(height), int(width), int(channels))

    def subset(self, n_train: int | None, n_test: int | None, seed: int = 0) -> "Dataset":
        """``n_train`` training and ``n_test`` test examples, as evenly spread over the classes as
        the class sizes allow, in an order fixed by ``seed``. ``None`` keeps that split whole and
        in its order. The two splits are drawn independently: ``n_test`` does not change which
        training examples are chosen."""
        x_train, y_train = _take(self.x_train, self.y_train, n_train, seed, 0, f"{self.name} train")
        x_test, y_test = _take(self.x_test, self.y_test, n_test, seed, 1, f"{self.name} test")
        return Dataset(self.name, x_train, y_train, x_test, y_test, self.num_classes, self.scaling)


def _take(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int, stream: int, what: str):
    if n is None:
        return x, y
    index = torch.from_numpy(stratified_indices(y.numpy(), n, np.random.default_rng([seed, stream]), what))
    return x[index], y[index]


def stratified_indices(labels: np.ndarray, n: int, rng: np.random.Generator, what: str = "split") -> np.ndarray:
    """``n`` indices into ``labels``, as many of every class as possible (class sizes permitting),
    the classes that get one more than the others and the examples within a class chosen by
    ``rng``, returned in random order."""
    labels = np.asarray(labels)
    if not 0 <= n <= len(labels):
        raise ValueError(f"{what}: cannot take {n} examples out of {len(labels)}")
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.zeros(len(classes), dtype=np.int64)
    open_classes = np.arange(len(classes))  # classes that still have unchosen examples
    remaining = n
    # Water-filling: classes smaller than an even share give all they have, the rest share the remainder.
    while remaining > 0:
        share = remaining // len(open_classes)
        if share == 0:
            extra = rng.choice(open_classes, size=remaining, replace=False)
            quota[extra] += 1
            break
        spare = counts[open_classes] - quota[open_classes]
        exhausted = spare <= share
        if exhausted.any():
            quota[open_classes[exhausted]] = counts[open_classes[exhausted]]
            remaining -= int(spare[exhausted].sum())
            open_classes = open_classes[~exhausted]
        else:
            quota[open_classes] += share
            remaining -= share * len(open_classes)
    chosen = [
        rng.permutation(np.flatnonzero(labels == label))[:take]
        for label, take in zip(classes, quota)
        if take
    ]
    chosen = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return rng.permutation(chosen).astype(np.int64)


def _to_tensors(images: np.ndarray, labels: np.ndarray, scale: float):
    """uint8/float NCHW images divided by ``scale`` (in float32), labels as int64."""
    x = images.astype(np.float32)
    x /= np.float32(scale)
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


# --- scikit-learn's digits -------------------------------------------------------------------


def digits_split_indices() -> tuple[np.ndarray, np.ndarray]:
    """The fixed digits split as indices into ``sklearn.datasets.load_digits()``: 100 images of
    each class (drawn with seed 0) for training, the remaining 797 for testing, both ascending."""
    from sklearn.datasets import load_digits as sklearn_digits

    return _digits_split(sklearn_digits().target)


def _digits_split(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    num_classes = len(np.unique(target))
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    train = np.sort(stratified_indices(target, DIGITS_TRAIN_PER_CLASS * num_classes, rng, "digits"))
    test = np.setdiff1d(np.arange(len(target)), train)
    return train, test


def load_digits() -> Dataset:
    """scikit-learn's 1797 8x8 digits (always available), split as ``digits_split_indices`` says."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = bunch.images[:, None]  # (N, 1, 8, 8), values 0..16
    train, test = _digits_split(bunch.target)
    x_train, y_train = _to_tensors(images[train], bunch.target[train], 16)
    x_test, y_test = _to_tensors(images[test], bunch.target[test], 16)
    return Dataset("digits", x_train, y_train, x_test, y_test, 10, "pixels / 16, in [0, 1]")


# --- Fashion-MNIST (IDX files) ---------------------------------------------------------------

# IDX's type byte -> element type; every multi-byte value in an IDX file is big-endian.
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzipped or not, told apart by the gzip magic bytes) as an array in native byte
    order. Header: two zero bytes, a type byte, the number of dimensions, then each dimension as a
    big-endian uint32; the data follow, row-major, and nothing after them."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise TaskFormatError(f"{path}: corrupt gzip data ({error})") from None
    if len(raw) < 4:
        raise TaskFormatError(f"{path}: truncated IDX file: {len(raw)} bytes, shorter than the 4-byte magic number")
    type_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0" or type_code not in IDX_TYPES or ndim == 0:
        raise TaskFormatError(
            f"{path}: not an IDX file: magic number 0x{raw[:4].hex()} "
            "(expected 0x0000, a type byte 08/09/0b/0c/0d/0e and a dimension count)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise TaskFormatError(f"{path}: truncated IDX header: {len(raw)} bytes, {ndim} dimensions need {header}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_TYPES[type_code]
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "trailing bytes after the data"
        raise TaskFormatError(
            f"{path}: {problem}: dimensions {'x'.join(map(str, dims))} of {dtype.itemsize}-byte values "
            f"need {expected} bytes, the file holds {len(raw)}"
        )
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _fashion_mnist_candidates() -> list[Path]:
    candidates = []
    configured = os.environ.get(FASHION_MNIST_ENV)
    if configured:
        candidates.append(Path(configured))
    candidates.append(FASHION_MNIST_SYSTEM_DIR)
    candidates.append(Path.home() / ".cache" / "pgdl-bench" / "data" / "fashion-mnist")
    return candidates


def _idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (each plain or ``.gz``), or None if one is missing."""
    found = {}
    for key, name in FASHION_MNIST_FILES.items():
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def _fashion_mnist_hint() -> str:
    return (
        "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist, "
        f"files in {FASHION_MNIST_SYSTEM_DIR}) or pass a folder holding the four IDX files "
        f"({', '.join(FASHION_MNIST_FILES.values())}, each optionally .gz) / set ${FASHION_MNIST_ENV} to it"
    )


def _read_idx_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise TaskFormatError(
            f"{images_path}: expected 28x28 unsigned-byte images (IDX type 08, 3 dimensions), "
            f"got {images.dtype} of shape {images.shape}"
        )
    labels = read_idx(labels_path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise TaskFormatError(
            f"{labels_path}: expected one unsigned-byte label per image (IDX type 08, 1 dimension), "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    if len(labels) != len(images):
        raise TaskFormatError(f"{labels_path}: {len(labels)} labels for the {len(images)} images of {images_path}")
    if len(labels) and labels.max() > 9:
        raise TaskFormatError(f"{labels_path}: label {int(labels.max())} outside the 10 classes 0..9")
    return images, labels


def load_fashion_mnist(folder: str | os.PathLike | None = None) -> Dataset:
    """Fashion-MNIST from its four IDX files in ``folder``; without one, from the first of
    ``$PGDL_FASHION_MNIST``, ``/usr/share/datasets/fashion-mnist`` (Debian's package) and
    ``~/.cache/pgdl-bench/data/fashion-mnist`` that holds them all."""
    candidates = [Path(folder)] if folder is not None else _fashion_mnist_candidates()
    for candidate in candidates:
        files = _idx_files(candidate)
        if files is not None:
            break
    else:
        where = str(candidates[0]) if folder is not None else "any of " + ", ".join(map(str, candidates))
        raise DatasetNotFound(f"Fashion-MNIST not found in {where}: {_fashion_mnist_hint()}")
    train_images, train_labels = _read_idx_split(files["x_train"], files["y_train"])
    test_images, test_labels = _read_idx_split(files["x_test"], files["y_test"])
    x_train, y_train = _to_tensors(train_images[:, None], train_labels, 255)
    x_test, y_test = _to_tensors(test_images[:, None], test_labels, 255)
    return Dataset("fashion-mnist", x_train, y_train, x_test, y_test, 10, "pixels / 255, in [0, 1]")


# --- CIFAR-10 (pickled python batches) -------------------------------------------------------


def _numpy_attribute(modules: tuple[str, ...], name: str):
    """``name`` from the first of ``modules`` that imports (numpy 2 moved ``numpy.core`` to
    ``numpy._core``; importing the old name there only warns)."""
    import importlib

    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy provides none of {', '.join(m + '.' + name for m in modules)}")


def _allowed_globals() -> dict[tuple[str, str], object]:
    """What an ndarray's pickle names: under protocols 0-4 ``_reconstruct`` + ``ndarray`` +
    ``dtype`` (and ``scalar`` for numpy scalars); under protocol 5 ``_frombuffer``. Pickles
    written with numpy 1 name ``numpy.core``, with numpy 2 ``numpy._core``: both map to whatever
    this numpy has."""
    multiarray = ("numpy._core.multiarray", "numpy.core.multiarray")
    numeric = ("numpy._core.numeric", "numpy.core.numeric")
    reconstruct = _numpy_attribute(multiarray, "_reconstruct")
    scalar = _numpy_attribute(multiarray, "scalar")
    frombuffer = _numpy_attribute(numeric, "_frombuffer")
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in multiarray:
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    for module in numeric:
        allowed[(module, "_frombuffer")] = frombuffer
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays, and nothing that runs code:
    every global the pickle names must be one of ``_allowed_globals``, else TaskFormatError."""

    def __init__(self, file, path: Path):
        # encoding="bytes": the official batches were pickled by Python 2, whose str becomes bytes.
        super().__init__(file, encoding="bytes")
        self._path = path
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            # Python 3 pickles bytes under protocols 0-2 as _codecs.encode(text, "latin1").
            return self._latin1_encode
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise TaskFormatError(
                f"{self._path}: refusing to unpickle the global {module}.{name}: "
                "a CIFAR-10 batch may only hold numpy arrays, lists and numbers"
            ) from None

    def _latin1_encode(self, text, encoding="utf-8", errors="strict"):
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise TaskFormatError(f"{self._path}: refusing _codecs.encode with encoding {encoding!r}")
        return text.encode("latin-1")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as (uint8 images NCHW, labels)."""
    try:
        with open(path, "rb") as file:
            batch = _ArrayUnpickler(file, path).load()
    except TaskFormatError:
        raise
    except Exception as error:  # whatever a damaged pickle makes the unpickler or numpy raise
        raise TaskFormatError(f"{path}: not a readable CIFAR-10 batch ({type(error).__name__}: {error})") from None
    if not isinstance(batch, dict):
        raise TaskFormatError(f"{path}: a CIFAR-10 batch is a dict, this pickle holds a {type(batch).__name__}")
    # The official files have bytes keys; a batch re-pickled by Python 3 with str keys is read as well.
    batch = {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        described = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise TaskFormatError(f"{path}: b'data' must be a uint8 array of shape (N, 3072), got {described}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise TaskFormatError(f"{path}: b'labels' must be a list of integers") from None
    if labels.shape != (len(data),):
        raise TaskFormatError(f"{path}: {labels.size} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise TaskFormatError(f"{path}: labels outside the 10 classes 0..9")
    # Each row is the red plane, then green, then blue, each 32x32 row-major: that is C, H, W.
    return data.reshape(len(data), 3, 32, 32), labels


def _cifar10_hint() -> str:
    return (
        f"download cifar-10-python.tar.gz (the CIFAR-10 python version) from {CIFAR10_URL}, "
        f"extract it (tar xzf cifar-10-python.tar.gz) and pass the extracted folder {CIFAR10_FOLDER}"
    )


def load_cifar10(folder: str | os.PathLike) -> Dataset:
    """CIFAR-10 from the extracted python version: ``data_batch_1`` .. ``data_batch_5`` train, in
    that order, and ``test_batch`` test. ``folder`` may also be the one that holds
    ``cifar-10-batches-py``."""
    if folder is None:
        raise DatasetNotFound(f"CIFAR-10 needs a folder: {_cifar10_hint()}")
    folder = Path(folder)
    if not (folder / CIFAR10_TEST_FILE).is_file() and (folder / CIFAR10_FOLDER).is_dir():
        folder = folder / CIFAR10_FOLDER
    names = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE)
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        problem = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
        raise DatasetNotFound(f"CIFAR-10 not found: {folder} {problem}: {_cifar10_hint()}")
    train = [_read_cifar_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    test_images, test_labels = _read_cifar_batch(folder / CIFAR10_TEST_FILE)
    x_train, y_train = _to_tensors(
        np.concatenate([images for images, _ in train]), np.concatenate([labels for _, labels in train]), 255
    )
    x_test, y_test = _to_tensors(test_images, test_labels, 255)
    return Dataset("cifar10", x_train, y_train, x_test, y_test, 10, "pixels / 255, in [0, 1]")


# --- MNIST ---------------------------------------------------------------------------------------
# MNIST digits from IDX files: the full data set, or the 10,000-digit fixture ``mnist10k``.
#
# Two layouts are read, told apart by the file names in the folder:
#
# - the original four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
#   ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``): 60,000 train and
#   10,000 test digits, the official split;
# - ``mnist10k-images-idx3-ubyte.gz`` and ``mnist10k-labels-idx1-ubyte.gz``: 10,000 real MNIST digits in
#   a fixed random order and no split of their own. Here the first ``MNIST10K_TRAIN`` = 8,000 rows are the
#   training split and the last 2,000 the test split (the order is a random permutation, so both are
#   roughly stratified).
#
# Without a folder the first of ``$PGDL_MNIST``, the repository's sibling ``../shared/fixtures/mnist10k``
# and ``~/.cache/pgdl-bench/data/mnist`` that holds either layout is used. Pixels / 255, in [0, 1].

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


# --- by name ---------------------------------------------------------------------------------

_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}


def load_dataset(name: str, folder: str | os.PathLike | None = None) -> Dataset:
    """The data set called ``name`` (a key of ``DATASETS``); ``folder`` is where its files are
    (digits has none; Fashion-MNIST searches its default places without one; CIFAR-10 needs it)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key == "digits":
        if folder is not None:
            raise UsageError("--data: digits ships with scikit-learn and takes no folder")
        return load_digits()
    if key == "fashion-mnist":
        return load_fashion_mnist(folder)
    if key == "cifar10":
        return load_cifar10(folder)
    if key == "mnist":
        return load_mnist(folder)
    raise UsageError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
