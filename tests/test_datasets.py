"""Data sets for in-house zoos: scikit-learn's digits, Fashion-MNIST (IDX), CIFAR-10 (pickled batches).

Expected values are computed here independently of the loaders: straight from scikit-learn's arrays,
from the Fashion-MNIST bytes read at their documented offsets, and from synthetic files whose every
byte the test chose.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_load_digits

from task_loaders import (
    Dataset,
    DatasetNotFound,
    TaskFormatError,
    load_cifar10,
    load_dataset,
    load_digits,
    load_fashion_mnist,
)
from task_loaders import datasets
from task_loaders.datasets import digits_split_indices, read_idx

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
CIFAR_HINT_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


# --- digits ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture(scope="module")
def sklearn_digits():
    return sklearn_load_digits()


def test_digits_shapes_dtypes_and_range(digits):
    assert digits.name == "digits"
    assert digits.x_train.shape == (1000, 1, 8, 8) and digits.x_test.shape == (797, 1, 8, 8)
    assert digits.y_train.shape == (1000,) and digits.y_test.shape == (797,)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert digits.x_test.dtype == torch.float32 and digits.y_test.dtype == torch.int64
    assert digits.num_classes == 10
    assert digits.input_shape == (8, 8, 1)
    assert "16" in digits.scaling
    for x in (digits.x_train, digits.x_test):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
        # pixels are integers 0..16 divided by 16
        assert torch.equal(x * 16, torch.round(x * 16))


def test_digits_split_is_stratified(digits, sklearn_digits):
    all_counts = np.bincount(sklearn_digits.target, minlength=10)
    assert all_counts.sum() == 1797
    assert digits.y_train.bincount(minlength=10).tolist() == [100] * 10
    assert digits.y_test.bincount(minlength=10).tolist() == (all_counts - 100).tolist()


def test_digits_pixels_are_sklearn_images_over_16(digits, sklearn_digits):
    train, test = digits_split_indices()
    assert len(train) == 1000 and len(test) == 797
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1797))
    images = sklearn_digits.images.astype(np.float64) / 16.0
    assert np.array_equal(digits.x_train[:, 0].numpy().astype(np.float64), images[train])
    assert np.array_equal(digits.x_test[:, 0].numpy().astype(np.float64), images[test])
    assert np.array_equal(digits.y_train.numpy(), sklearn_digits.target[train])
    assert np.array_equal(digits.y_test.numpy(), sklearn_digits.target[test])


def test_digits_train_and_test_together_are_all_of_sklearn_digits(digits, sklearn_digits):
    """Index-free check: the rows (pixels and label) of both splits are exactly sklearn's rows."""

    def sorted_rows(pixels, labels):
        rows = np.concatenate([pixels.reshape(len(pixels), -1), labels[:, None]], axis=1)
        return rows[np.lexsort(rows.T[::-1])]

    ours = sorted_rows(
        torch.cat([digits.x_train, digits.x_test]).numpy().astype(np.float64) * 16,
        torch.cat([digits.y_train, digits.y_test]).numpy(),
    )
    theirs = sorted_rows(sklearn_digits.images, sklearn_digits.target)
    assert np.array_equal(ours, theirs)


def test_digits_is_deterministic(digits):
    again = load_digits()
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(digits, name), getattr(again, name))


# --- Fashion-MNIST from Debian's dataset-fashion-mnist ----------------------------------------


@pytest.fixture(scope="module")
def fashion():
    if not all((FASHION_DIR / f"{name}.gz").is_file() for name in datasets.FASHION_MNIST_FILES.values()):
        pytest.skip(
            f"Fashion-MNIST not installed in {FASHION_DIR} "
            "(apt-get install dataset-fashion-mnist to run these tests)"
        )
    raw = {key: gzip.decompress((FASHION_DIR / f"{name}.gz").read_bytes())
           for key, name in datasets.FASHION_MNIST_FILES.items()}
    return load_fashion_mnist(FASHION_DIR), raw


def test_fashion_mnist_shapes_and_headers(fashion):
    data, raw = fashion
    # The headers, read at IDX's documented offsets: magic, then big-endian dimensions.
    assert struct.unpack(">IIII", raw["x_train"][:16]) == (0x803, 60000, 28, 28)
    assert struct.unpack(">II", raw["y_train"][:8]) == (0x801, 60000)
    assert struct.unpack(">IIII", raw["x_test"][:16]) == (0x803, 10000, 28, 28)
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10
    assert "255" in data.scaling
    assert float(data.x_train.min()) == 0.0 and float(data.x_train.max()) == 1.0


def test_fashion_mnist_values_match_the_raw_bytes(fashion):
    data, raw = fashion
    assert int(data.y_train[0]) == raw["y_train"][8] == 9  # the first training image is an ankle boot
    assert int(data.y_test[0]) == raw["y_test"][8]
    assert int(data.y_train[-1]) == raw["y_train"][8 + 59999]
    for split, n in (("train", 0), ("train", 1), ("train", 59999), ("test", 0), ("test", 9999)):
        x = getattr(data, f"x_{split}")
        for row, col in ((0, 0), (14, 14), (10, 20), (27, 27), (20, 5)):
            byte = raw[f"x_{split}"][16 + n * 784 + row * 28 + col]
            assert float(x[n, 0, row, col]) == float(np.float32(byte) / np.float32(255)), (split, n, row, col)
    # The whole first image, to catch a transposition that single pixels could miss.
    first = np.frombuffer(raw["x_train"], dtype=np.uint8, count=784, offset=16).reshape(28, 28)
    assert np.array_equal(np.rint(data.x_train[0, 0].numpy() * 255).astype(np.uint8), first)


def test_fashion_mnist_class_counts(fashion):
    data, _ = fashion
    assert data.y_train.bincount(minlength=10).tolist() == [6000] * 10
    assert data.y_test.bincount(minlength=10).tolist() == [1000] * 10


# --- IDX round trip and damaged files ---------------------------------------------------------


def idx_bytes(array: np.ndarray, type_code: int = 0x08, big_endian_dtype: str = "u1") -> bytes:
    """An IDX file written from its definition: 0x0000, type byte, ndim, big-endian dims, data."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian_dtype).tobytes()


def synthetic_fashion(folder: Path, n_train=5, n_test=3, gzipped=True, seed=0):
    """Four small IDX files (28x28 images); returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in datasets.FASHION_MNIST_FILES.items():
        content = idx_bytes(arrays[key])
        if gzipped:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
    return arrays


@pytest.mark.parametrize("gzipped", [True, False], ids=["gz", "plain"])
def test_idx_round_trip(tmp_path, gzipped):
    arrays = synthetic_fashion(tmp_path, gzipped=gzipped)
    data = load_fashion_mnist(tmp_path)
    assert data.x_train.shape == (5, 1, 28, 28) and data.x_test.shape == (3, 1, 28, 28)
    expected = arrays["x_train"].astype(np.float32) / np.float32(255)
    assert np.array_equal(data.x_train[:, 0].numpy(), expected)
    assert np.array_equal(data.x_test[:, 0].numpy(), arrays["x_test"].astype(np.float32) / np.float32(255))
    assert data.y_train.tolist() == arrays["y_train"].tolist()
    assert data.y_test.tolist() == arrays["y_test"].tolist()


def test_fashion_mnist_env_variable(tmp_path, monkeypatch):
    arrays = synthetic_fashion(tmp_path / "fm", n_train=4, n_test=2)
    monkeypatch.setenv("PGDL_FASHION_MNIST", str(tmp_path / "fm"))
    data = load_dataset("fashion-mnist")
    assert len(data.y_train) == 4 and data.y_test.tolist() == arrays["y_test"].tolist()


def test_read_idx_big_endian_multibyte(tmp_path):
    values = np.array([[1, -2, 70000], [-(2**31), 2**31 - 1, 0]], dtype=np.int64)
    path = tmp_path / "ints.idx"
    path.write_bytes(idx_bytes(values, 0x0C, ">i4"))
    assert read_idx(path).tolist() == values.tolist()
    floats = np.array([0.5, -1.25, 3e10])
    path.write_bytes(idx_bytes(floats, 0x0E, ">f8"))
    assert read_idx(path).tolist() == floats.tolist()


def damage(tmp_path: Path, key: str, transform, gzipped: bool = False) -> Path:
    synthetic_fashion(tmp_path, gzipped=gzipped)
    name = datasets.FASHION_MNIST_FILES[key] + (".gz" if gzipped else "")
    path = tmp_path / name
    path.write_bytes(transform(path.read_bytes()))
    return path


@pytest.mark.parametrize(
    "key, transform, gzipped, words",
    [
        ("x_train", lambda b: b"\x01\x02" + b[2:], False, "magic"),
        ("x_test", lambda b: b[:2] + b"\x07" + b[3:], False, "magic"),
        ("y_train", lambda b: b[:-1], False, "truncated"),
        ("x_train", lambda b: b[:100], False, "truncated"),
        ("x_train", lambda b: b[:10], False, "truncated"),
        ("y_test", lambda b: b + b"\0", False, "trailing"),
        ("x_train", lambda b: gzip.compress(gzip.decompress(b)[:-5]), True, "truncated"),
        ("x_train", lambda b: b[: len(b) // 2], True, "gzip"),
    ],
    ids=["bad-magic", "bad-type", "labels-1-short", "images-truncated", "header-truncated",
         "trailing", "gz-content-truncated", "gz-stream-cut"],
)
def test_corrupt_idx_names_the_file(tmp_path, key, transform, gzipped, words):
    path = damage(tmp_path, key, transform, gzipped)
    with pytest.raises(TaskFormatError, match=words) as info:
        load_fashion_mnist(tmp_path)
    assert str(path) in str(info.value)


def test_idx_content_checks(tmp_path):
    # A label outside 0..9
    path = damage(tmp_path / "a", "y_train", lambda b: b[:-1] + b"\x0a")
    with pytest.raises(TaskFormatError, match="label 10") as info:
        load_fashion_mnist(tmp_path / "a")
    assert str(path) in str(info.value)
    # Labels that do not match the image count
    synthetic_fashion(tmp_path / "b")
    path = tmp_path / "b" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(2, dtype=np.uint8))))
    with pytest.raises(TaskFormatError, match="2 labels") as info:
        load_fashion_mnist(tmp_path / "b")
    assert str(path) in str(info.value)
    # Images that are not 28x28
    synthetic_fashion(tmp_path / "c")
    path = tmp_path / "c" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 27, 28), dtype=np.uint8))))
    with pytest.raises(TaskFormatError, match="28x28") as info:
        load_fashion_mnist(tmp_path / "c")
    assert str(path) in str(info.value)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFound) as info:
        load_fashion_mnist(tmp_path / "nowhere")
    message = str(info.value)
    assert isinstance(info.value, TaskFormatError)
    assert "apt-get install dataset-fashion-mnist" in message and "PGDL_FASHION_MNIST" in message
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "nowhere") in message
    # Three of four files is still missing.
    synthetic_fashion(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFound):
        load_fashion_mnist(tmp_path / "partial")
    # No folder and nothing in any default place: every place searched is named.
    monkeypatch.setenv("PGDL_FASHION_MNIST", str(tmp_path / "env"))
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DatasetNotFound) as info:
        load_fashion_mnist()
    for place in (tmp_path / "env", tmp_path / "system", tmp_path / "home"):
        assert str(place) in str(info.value)


# --- CIFAR-10 ---------------------------------------------------------------------------------

CIFAR_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_pixel(batch: int, n: int, channel: int, row: int, col: int) -> int:
    return (batch * 31 + n * 17 + channel * 89 + row * 7 + col * 3) % 256


def synthetic_batch(batch: int, n_images: int) -> dict:
    data = np.zeros((n_images, 3072), dtype=np.uint8)
    for n in range(n_images):
        for channel in range(3):
            for row in range(32):
                for col in range(32):
                    # The documented layout: 1024 red values, 1024 green, 1024 blue, each row-major.
                    data[n, channel * 1024 + row * 32 + col] = cifar_pixel(batch, n, channel, row, col)
    labels = [(batch + 3 * n) % 10 for n in range(n_images)]
    return {
        b"batch_label": f"batch {batch}".encode(),
        b"labels": labels,
        b"data": data,
        b"filenames": [f"image_{batch}_{n}.png".encode() for n in range(n_images)],
    }


def write_cifar(folder: Path, protocol: int, sizes=(3, 2, 3, 2, 1, 4)) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    batches = []
    for batch, (name, size) in enumerate(zip(CIFAR_NAMES, sizes)):
        content = synthetic_batch(batch, size)
        with open(folder / name, "wb") as file:
            pickle.dump(content, file, protocol=protocol)
        batches.append(content)
    return batches


@pytest.mark.parametrize("protocol", sorted({2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL}))
def test_cifar10_values_and_layout(tmp_path, protocol):
    batches = write_cifar(tmp_path, protocol)
    data = load_cifar10(tmp_path)
    assert data.name == "cifar10" and data.num_classes == 10 and "255" in data.scaling
    assert data.x_train.shape == (11, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.input_shape == (32, 32, 3)
    # Training images are batches 1..5 in order.
    origin = [(batch, n) for batch in range(5) for n in range(len(batches[batch][b"labels"]))]
    assert data.y_train.tolist() == [batches[b][b"labels"][n] for b, n in origin]
    assert data.y_test.tolist() == batches[5][b"labels"]
    for i, (batch, n) in enumerate(origin):
        for channel, row, col in ((0, 0, 0), (1, 5, 7), (2, 31, 0), (0, 0, 31), (2, 17, 29)):
            expected = np.float32(cifar_pixel(batch, n, channel, row, col)) / np.float32(255)
            assert float(data.x_train[i, channel, row, col]) == float(expected)
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    for n in range(4):
        for channel in range(3):
            expected = cifar_pixel(5, n, channel, rows, cols)
            assert np.array_equal(np.rint(data.x_test[n, channel].numpy() * 255), expected)


def test_cifar10_numpy1_pickles_and_parent_folder(tmp_path):
    """The official batches name numpy.core.multiarray (numpy 1); pass the archive's parent folder."""
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, 2)
    for name in CIFAR_NAMES:
        content = (folder / name).read_bytes()
        assert b"numpy._core.multiarray\n_reconstruct" in content
        (folder / name).write_bytes(content.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    data = load_cifar10(tmp_path)
    assert data.x_test.shape == (4, 3, 32, 32)
    assert float(data.x_test[1, 2, 3, 4]) == float(np.float32(cifar_pixel(5, 1, 2, 3, 4)) / np.float32(255))


class RunsShell:
    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch '{self.sentinel}'",))


class RunsEval:
    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (eval, (f"open({str(self.sentinel)!r}, 'w').close()",))


@pytest.mark.parametrize("payload, global_name", [(RunsShell, "system"), (RunsEval, "eval")])
@pytest.mark.parametrize("where", ["top", "inside"])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, payload, global_name, where):
    write_cifar(tmp_path / "cifar", pickle.DEFAULT_PROTOCOL)
    sentinel = tmp_path / "pwned"
    evil = payload(sentinel)
    content = evil if where == "top" else {b"data": evil, b"labels": [0]}
    path = tmp_path / "cifar" / "data_batch_3"
    path.write_bytes(pickle.dumps(content, protocol=2))
    # The payload is live: an ordinary unpickler runs it.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(payload(proof)))
    assert proof.exists()
    with pytest.raises(TaskFormatError, match=global_name) as info:
        load_cifar10(tmp_path / "cifar")
    assert str(path) in str(info.value)
    assert not sentinel.exists()


def test_cifar10_refuses_other_codecs_and_damaged_batches(tmp_path):
    write_cifar(tmp_path, 2)
    path = tmp_path / "test_batch"
    # Protocol 0 by hand: _codecs.encode("abc", "rot13") -- only latin1 (how bytes are pickled) is allowed.
    path.write_bytes(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")
    with pytest.raises(TaskFormatError, match="rot13") as info:
        load_cifar10(tmp_path)
    assert str(path) in str(info.value)
    write_cifar(tmp_path, 2)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(TaskFormatError) as info:
        load_cifar10(tmp_path)
    assert str(path) in str(info.value)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), dtype=np.uint8), b"labels": [0, 1]}))
    with pytest.raises(TaskFormatError, match="3072"):
        load_cifar10(tmp_path)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 10]}))
    with pytest.raises(TaskFormatError, match="labels"):
        load_cifar10(tmp_path)


def test_missing_cifar10_says_how_to_get_it(tmp_path):
    for folder in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(DatasetNotFound) as info:
            load_cifar10(folder)
        message = str(info.value)
        assert "cifar-10-python.tar.gz" in message and CIFAR_HINT_URL in message
        assert str(folder) in message
    (tmp_path / "test_batch").write_bytes(b"")
    with pytest.raises(DatasetNotFound, match="data_batch_1, data_batch_2"):
        load_cifar10(tmp_path)
    with pytest.raises(DatasetNotFound, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10")


# --- subset, by name, validation --------------------------------------------------------------


def indexed_dataset(train_labels, test_labels) -> Dataset:
    """Images whose single pixel is their own index, so a subset's origin can be read off it."""
    def split(labels):
        labels = torch.tensor(labels, dtype=torch.int64)
        return torch.arange(len(labels), dtype=torch.float32).reshape(-1, 1, 1, 1), labels

    return Dataset("toy", *split(train_labels), *split(test_labels), num_classes=3, scaling="index")


def test_subset_is_stratified_and_deterministic(digits):
    small = digits.subset(50, 30, seed=1)
    assert small.y_train.bincount(minlength=10).tolist() == [5] * 10
    assert small.y_test.bincount(minlength=10).tolist() == [3] * 10
    assert small.x_train.shape == (50, 1, 8, 8) and small.name == "digits" and small.scaling == digits.scaling
    again = digits.subset(50, 30, seed=1)
    assert torch.equal(small.x_train, again.x_train) and torch.equal(small.y_test, again.y_test)
    other = digits.subset(50, 30, seed=2)
    assert not torch.equal(small.x_train, other.x_train)
    # n_test does not change the training subset; None keeps a split whole.
    train_only = digits.subset(50, None, seed=1)
    assert torch.equal(train_only.x_train, small.x_train)
    assert torch.equal(train_only.x_test, digits.x_test) and torch.equal(train_only.y_test, digits.y_test)
    uneven = digits.subset(23, 0, seed=0).y_train.bincount(minlength=10)
    assert uneven.sum() == 23 and uneven.max() - uneven.min() == 1
    # Distinct examples, each a row of the original with its own label.
    flat = digits.x_train.reshape(1000, -1)
    for x, y in zip(small.x_train.reshape(50, -1), small.y_train):
        matches = (flat == x).all(dim=1).nonzero().flatten()
        assert len(matches) >= 1 and (digits.y_train[matches] == y).all()


def test_subset_with_a_scarce_class_and_pairs_kept():
    data = indexed_dataset([0] * 2 + [1] * 10 + [2] * 10, [0, 1, 2, 2])
    small = data.subset(15, 3, seed=4)
    # An even share would be 5 each; class 0 has only 2, so the other 13 go 6 / 7 to classes 1 and 2.
    assert sorted(small.y_train.bincount(minlength=3).tolist()) == [2, 6, 7]
    assert small.y_test.bincount(minlength=3).tolist() == [1, 1, 1]
    index = small.x_train.flatten().long()
    assert len(set(index.tolist())) == 15
    assert torch.equal(data.y_train[index], small.y_train)
    # Taking everything permutes the split, in an order set by the seed.
    orders = [data.subset(22, None, seed=seed).x_train.flatten().tolist() for seed in (0, 0, 1)]
    assert sorted(orders[0]) == list(range(22)) and orders[0] != list(range(22))
    assert orders[0] == orders[1] and orders[0] != orders[2]
    with pytest.raises(ValueError):
        data.subset(23, None)
    with pytest.raises(ValueError):
        data.subset(None, -1)


def test_dataset_checks_its_tensors():
    x = torch.zeros(4, 1, 2, 2)
    y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="float32"):
        Dataset("bad", x.double(), y, x, y, 2, "none")
    with pytest.raises(ValueError, match="int64"):
        Dataset("bad", x, y.int(), x, y, 2, "none")
    with pytest.raises(ValueError, match="labels outside"):
        Dataset("bad", x, y, x, y + 1, 2, "none")
    with pytest.raises(ValueError, match="differ in shape"):
        Dataset("bad", x, y, torch.zeros(4, 1, 3, 2), y, 2, "none")


def test_load_dataset_by_name(tmp_path):
    assert set(datasets.DATASETS) == {"digits", "fashion-mnist", "cifar10", "mnist"}
    assert all(isinstance(line, str) and "\n" not in line for line in datasets.DATASETS.values())
    assert load_dataset("digits").x_train.shape == (1000, 1, 8, 8)
    write_cifar(tmp_path, 2)
    assert load_dataset("cifar10", tmp_path).x_test.shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="digits, fashion-mnist, cifar10"):
        load_dataset("imagenet")
