"""In-house model zoos: named recipes trained PGDL-style and written as PGDL task folders.

A recipe fixes a dataset (and its train/test subset), an architecture family, a complete grid of
hyperparameters (PGDL-style names), the epochs and a seed. Every model of the grid is trained
deterministically from a seed derived from its hyperparameters *other than* ``batchnorm``, so a
BatchNorm zoo and its no-BatchNorm twin (or the two halves of a grid with a ``batchnorm`` axis) share
initial weights of every common layer, data order and dropout masks: they differ only in BatchNorm.

Layout written (a PGDL task folder, readable by ``load_task``):
``zoo.json`` (recipe and fingerprint), ``dataset_1/{train,test}``, ``model_<id>/`` (config.json,
weights.hdf5, weights_init.hdf5, ``test_correct.npy`` and ``train_correct.npy`` (each sample's
correctness, bool, in split order: what the noise ceiling is computed from), and ``metrics.json``, the
in-house completion record: a model folder appears only complete, renamed from a temporary folder),
then ``model_configs.json`` once all are done.

Training seeds: ``recipe.with_seed(s)`` is the same grid, data and schedule trained from seed ``s``
(the data subset stays the recipe's); ``replicate_set`` trains several such seeds side by side.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .architectures import ARCHITECTURES
from .datasets import flip_labels, load_dataset
from .errors import TaskFormatError, UsageError
from .json_files import read_json
from .keras_layers import build_network
from .keras_weights import load_network_weights
from .model_configs import Grid, ModelRecord, write_model_configs
from .task import read_split_tensors
from .training import TrainConfig, keras_initialize, per_sample_correct, train_network
from .tfrecord import write_split
from .writer import to_stored_layout, write_model

ZOO_FORMAT = 2  # bump when training code changes what a recipe produces
ARCH_HPARAMS = {"convwidth": "width", "width": "width", "depth": "depth", "dropout": "dropout", "batchnorm": "batchnorm"}
TRAIN_HPARAMS = ("weight_decay", "batch_size", "learning_rate")
DEFAULTS = {"dropout": 0.0, "weight_decay": 0.0, "batch_size": 32, "learning_rate": 0.05, "batchnorm": False}


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    dataset: str
    architecture: str
    grid: tuple[tuple[str, tuple], ...]  # (hyperparameter, values) in file order
    epochs: int
    n_train: int | None = None
    n_test: int | None = None
    fixed: tuple[tuple[str, Any], ...] = ()  # settings of hyperparameters that are not on the grid
    seed: int = 0  # the data subset's seed, and the training seed unless ``train_seed`` is set
    twin: str | None = None  # the recipe that differs only in BatchNorm
    train_seed: int | None = None  # a training seed other than ``seed`` (see ``with_seed``)

    @property
    def training_seed(self) -> int:
        return self.seed if self.train_seed is None else self.train_seed

    def with_seed(self, seed: int) -> "Recipe":
        """The same grid, data and schedule trained from ``seed``; the recipe itself for its own seed."""
        if seed == self.training_seed:
            return self
        return replace(self, train_seed=None if seed == self.seed else int(seed))

    @property
    def build_name(self) -> str:
        """The folder name of a build: the recipe's name, with ``-seed<S>`` for another training seed."""
        return self.name if self.train_seed is None else f"{self.name}-seed{self.train_seed}"

    def models(self) -> list[tuple[str, dict[str, Any]]]:
        names = [n for n, _ in self.grid]
        combos = itertools.product(*(values for _, values in self.grid))
        return [(str(i), dict(zip(names, combo))) for i, combo in enumerate(combos)]

    def settings(self, hparams: dict[str, Any]) -> dict[str, Any]:
        return {**DEFAULTS, **dict(self.fixed), **hparams}

    def layers(self, hparams: dict[str, Any], input_shape, num_classes: int) -> list[dict]:
        settings = self.settings(hparams)
        kwargs = {ARCH_HPARAMS[k]: settings[k] for k in ARCH_HPARAMS if k in settings}
        kwargs["batchnorm"] = bool(kwargs.get("batchnorm", False))
        return ARCHITECTURES[self.architecture](tuple(input_shape), num_classes, **kwargs)

    def model_seed(self, hparams: dict[str, Any]) -> int:
        shared = {k: v for k, v in hparams.items() if k != "batchnorm"}
        digest = hashlib.sha256(json.dumps([self.training_seed, shared], sort_keys=True).encode()).digest()
        return int.from_bytes(digest[:7], "little")

    def train_config(self, hparams: dict[str, Any]) -> TrainConfig:
        s = self.settings(hparams)
        return TrainConfig(epochs=self.epochs, batch_size=int(s["batch_size"]), learning_rate=float(s["learning_rate"]),
                           weight_decay=float(s["weight_decay"]), seed=self.model_seed(hparams))

    def fingerprint(self) -> str:
        return hashlib.sha256(repr((ZOO_FORMAT, self)).encode()).hexdigest()[:16]

    def to_grid(self) -> Grid:
        return Grid(tuple(n for n, _ in self.grid), {n: tuple(v) for n, v in self.grid})


def _twins(name: str, description: str, **kwargs) -> dict[str, Recipe]:
    """A BatchNorm recipe and its no-BatchNorm twin (same grid, seeds, data)."""
    bn, nobn = f"{name}-bn", f"{name}-nobn"
    fixed = dict(kwargs.pop("fixed", ()))
    return {
        bn: Recipe(bn, f"{description}, with BatchNorm", fixed=tuple({**fixed, "batchnorm": True}.items()),
                   twin=nobn, **kwargs),
        nobn: Recipe(nobn, f"{description}, without BatchNorm", fixed=tuple({**fixed, "batchnorm": False}.items()),
                     twin=bn, **kwargs),
    }


_PGDL_GRID = (("convwidth", (8, 16)), ("depth", (1, 2)), ("dropout", (0.0, 0.5)),
              ("weight_decay", (0.0, 0.001)), ("batch_size", (32, 128)))

RECIPES: dict[str, Recipe] = {
    **_twins("digits", "VGG-like on scikit-learn digits (400 train), 32 models: the embedded default",
             dataset="digits", architecture="vgg", grid=_PGDL_GRID, epochs=60, n_train=400, n_test=None),
    **_twins("fashion", "VGG-like on Fashion-MNIST (PGDL task 8 at CPU widths; 2000 train, 2000 test), 32 models",
             dataset="fashion-mnist", architecture="vgg",
             grid=(("convwidth", (8, 16)), ("depth", (1, 2)), ("dropout", (0.0, 0.5)),
                   ("weight_decay", (0.0, 0.0005)), ("batch_size", (32, 128))),
             fixed=(("learning_rate", 0.02),), epochs=20, n_train=2000, n_test=2000),
    **_twins("cifar10", "VGG-like on CIFAR-10 (PGDL task 1 at CPU widths; 5000 train, 2000 test), 32 models; "
             "needs --data DIR with the python batches",
             dataset="cifar10", architecture="vgg",
             grid=(("convwidth", (16, 32)), ("depth", (2, 3)), ("dropout", (0.0, 0.5)),
                   ("weight_decay", (0.0, 0.0005)), ("batch_size", (32, 128))),
             epochs=20, n_train=5000, n_test=2000),
    "digits-bnaxis": Recipe(
        "digits-bnaxis", "VGG-like on digits with BatchNorm on/off as a grid axis, 16 models",
        dataset="digits", architecture="vgg",
        grid=(("convwidth", (8, 16)), ("depth", (1, 2)), ("dropout", (0.0, 0.5)), ("batchnorm", (False, True))),
        epochs=60, n_train=400),
    "digits-tiny": Recipe(
        "digits-tiny", "a tiny digits zoo for smoke tests, 8 models", dataset="digits", architecture="vgg",
        grid=(("convwidth", (4, 8)), ("dropout", (0.0, 0.5)), ("batch_size", (32, 128))),
        fixed=(("depth", 1),), epochs=4, n_train=300, n_test=300),
    "fashion-tiny": Recipe(
        "fashion-tiny", "a tiny Fashion-MNIST zoo for smoke tests and CI, 8 models", dataset="fashion-mnist",
        architecture="vgg", grid=(("convwidth", (4, 8)), ("dropout", (0.0, 0.5)), ("batch_size", (32, 128))),
        fixed=(("depth", 1),), epochs=2, n_train=500, n_test=500),
}
# BatchNorm studies (Potgieter, Mouton & Davel, arXiv 2501.14441): the paper's four-conv CNN with and
# without BatchNorm, several seeds, otherwise identical (SGD, lr 0.01). "seed" is a grid axis that only
# changes the model's seed; "batchnorm" does not, so each seed's two twins share their initialization.
RECIPES.update({
    "fashion-cnn4-study": Recipe(
        "fashion-cnn4-study", "the BatchNorm paper's 4-conv CNN on Fashion-MNIST (3000 train), BN on/off x 4 seeds",
        dataset="fashion-mnist", architecture="cnn4",
        grid=(("batchnorm", (False, True)), ("seed", (0, 1, 2, 3))),
        fixed=(("convwidth", 16), ("learning_rate", 0.01), ("batch_size", 32)), epochs=10, n_train=3000, n_test=2000),
    "digits-cnn4-study": Recipe(
        "digits-cnn4-study", "a small BatchNorm study on digits for tests: 4-conv CNN, BN on/off x 2 seeds",
        dataset="digits", architecture="cnn4", grid=(("batchnorm", (False, True)), ("seed", (0, 1))),
        fixed=(("convwidth", 4), ("learning_rate", 0.01), ("batch_size", 32)), epochs=3, n_train=300, n_test=300),
})
# The seed papers' experiments on MNIST (``pgdl-bench study``; mnist10k fixture or --data with full MNIST).
# A "label_noise" setting flips that fraction of the stored training labels (the test split stays clean).
DD_WIDTHS = (4, 8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 256, 512)
_MNIST_VGG_GRID = (("convwidth", (8, 16)), ("dropout", (0.0, 0.5)), ("weight_decay", (0.0, 0.0005)),
                   ("batch_size", (32, 128)), ("learning_rate", (0.01, 0.03)))
RECIPES.update({
    "mnist-mlp-dd": Recipe(
        "mnist-mlp-dd", f"one-hidden-layer MLP width sweep on MNIST (4000 train, 20% label noise), "
        f"{len(DD_WIDTHS)} widths: double descent", dataset="mnist", architecture="mlp",
        grid=(("width", DD_WIDTHS),), fixed=(("label_noise", 0.2), ("learning_rate", 0.05), ("batch_size", 64)),
        epochs=200, n_train=4000, n_test=2000),
    "mnist-mlp-dd-small": Recipe(
        "mnist-mlp-dd-small", "a small MLP width sweep on MNIST for tests (200 train, 20% label noise), 4 widths",
        dataset="mnist", architecture="mlp", grid=(("width", (2, 8, 32, 128)),),
        fixed=(("label_noise", 0.2), ("learning_rate", 0.05), ("batch_size", 32)), epochs=30, n_train=200,
        n_test=500),
    "mnist-nobn": Recipe(
        "mnist-nobn", "VGG-like (depth 2) on MNIST (2000 train, 2000 test), 32 models: the fragmentation studies' zoo",
        dataset="mnist", architecture="vgg", grid=_MNIST_VGG_GRID, fixed=(("depth", 2),), epochs=15,
        n_train=2000, n_test=2000),
    "mnist-tiny": Recipe(
        "mnist-tiny", "a tiny MNIST zoo for the studies' tests, 8 models", dataset="mnist", architecture="vgg",
        grid=(("convwidth", (4, 8)), ("dropout", (0.0, 0.5)), ("batch_size", (32, 128))),
        fixed=(("depth", 1),), epochs=14, n_train=200, n_test=300),
    "mnist-cnn4-study": Recipe(
        "mnist-cnn4-study", "the BatchNorm paper's MNIST setting: 4-conv CNN, SGD lr 0.01, BN on/off x 4 seeds "
        "(8000 train)", dataset="mnist", architecture="cnn4", grid=(("batchnorm", (False, True)), ("seed", (0, 1, 2, 3))),
        fixed=(("convwidth", 16), ("learning_rate", 0.01), ("batch_size", 32)), epochs=10, n_train=8000, n_test=2000),
    "mnist-cnn4-small": Recipe(
        "mnist-cnn4-small", "a small MNIST BatchNorm study for tests: 4-conv CNN, BN on/off x 2 seeds",
        dataset="mnist", architecture="cnn4", grid=(("batchnorm", (False, True)), ("seed", (0, 1))),
        fixed=(("convwidth", 4), ("learning_rate", 0.01), ("batch_size", 32)), epochs=4, n_train=600, n_test=300),
    "cifar10-vgg16-study": Recipe(
        "cifar10-vgg16-study", "the BatchNorm paper's CIFAR-10 setting at CPU width: VGG-16 (width 16), SGD lr 0.01, "
        "BN on/off x 4 seeds (5000 train); needs --data", dataset="cifar10", architecture="vgg16",
        grid=(("batchnorm", (False, True)), ("seed", (0, 1, 2, 3))),
        fixed=(("convwidth", 16), ("learning_rate", 0.01), ("batch_size", 32)), epochs=20, n_train=5000, n_test=2000),
})
DEFAULT_ZOOS = ("digits-bn", "digits-nobn")
# Each model's per-sample correctness (bool .npy, in split order), written by the build.
CORRECTNESS_FILES = {"train": "train_correct.npy", "test": "test_correct.npy"}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise UsageError(f"unknown zoo recipe '{name}' (available: {', '.join(RECIPES)})") from None


def bench_home() -> Path:
    """Where pgdl-bench keeps built zoos and its results store: $PGDL_BENCH_HOME, else the user cache."""
    home = os.environ.get("PGDL_BENCH_HOME")
    return Path(home) if home else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pgdl-bench"


def zoo_cache_dir() -> Path:
    return bench_home() / "zoos"


# -- building -------------------------------------------------------------------------------------


def prepare_zoo(recipe: Recipe, out: str | os.PathLike, data: str | os.PathLike | None = None,
                fresh: bool = False) -> Path:
    """Create the zoo folder and its data splits (once); refuse a folder built from another recipe."""
    out = Path(out)
    stamp = out / "zoo.json"
    if out.exists() and fresh:
        shutil.rmtree(out)
    if stamp.exists():
        previous = read_json(stamp)
        if not isinstance(previous, dict):
            raise TaskFormatError(f"{stamp}: not a zoo stamp; rebuild with --fresh")
        if previous.get("fingerprint") != recipe.fingerprint():
            raise TaskFormatError(
                f"{out}: built from another version of recipe '{previous.get('recipe')}'; rebuild with --fresh"
            )
    elif out.exists() and any(out.iterdir()):
        raise TaskFormatError(f"{out}: not empty and not a zoo; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "dataset_1").is_dir():
        dataset = load_dataset(recipe.dataset, data).subset(recipe.n_train, recipe.n_test, seed=recipe.seed)
        noise = float(dict(recipe.fixed).get("label_noise", 0.0))
        if noise:  # the stored training split holds the labels the models are trained on; test stays clean
            dataset.y_train = torch.from_numpy(flip_labels(dataset.y_train.numpy(), noise, dataset.num_classes,
                                                           recipe.seed))
        tmp = out / "dataset_1.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        write_split(tmp / "train", to_stored_layout(dataset.x_train), dataset.y_train.numpy())
        write_split(tmp / "test", to_stored_layout(dataset.x_test), dataset.y_test.numpy())
        os.replace(tmp, out / "dataset_1")
    stamp.write_text(json.dumps({"recipe": recipe.name, "fingerprint": recipe.fingerprint(),
                                 "description": recipe.description, "twin": recipe.twin,
                                 "training_seed": recipe.training_seed}, indent=2) + "\n")
    return out


def finished_models(recipe: Recipe, out: str | os.PathLike) -> set[str]:
    out = Path(out)
    return {m for m, _ in recipe.models() if (out / f"model_{m}" / "metrics.json").is_file()}


_SPLITS: dict[str, tuple] = {}


def _splits(out: Path):
    key = str(out.resolve())
    if key not in _SPLITS:
        _SPLITS.clear()
        _SPLITS[key] = (read_split_tensors(out / "dataset_1" / "train"), read_split_tensors(out / "dataset_1" / "test"))
    return _SPLITS[key]


def train_zoo_model(recipe: Recipe, model_id: str, out: str | os.PathLike) -> dict[str, float]:
    """Train one model of a recipe and write its folder atomically; returns its accuracies.

    The accuracies are measured on the network read back from the written files, with the same code
    ``load_task`` uses, so that rerunning the exported model reproduces them exactly. Training runs on
    one thread: a reduction's order then does not depend on the machine's core count, and the same
    recipe and seed give bit-identical weight files (parallelism comes from training models at once).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_zoo_model(recipe, model_id, Path(out))
    finally:
        torch.set_num_threads(threads)


def _train_zoo_model(recipe: Recipe, model_id: str, out: Path) -> dict[str, float]:
    hparams = dict(recipe.models())[model_id]
    (x_train, y_train), (x_test, y_test) = _splits(out)
    input_shape = tuple(x_train.shape[2:]) + (x_train.shape[1],) if x_train.dim() == 4 else tuple(x_train.shape[1:])
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    layers = recipe.layers(hparams, input_shape, num_classes)
    config = recipe.train_config(hparams)
    network = build_network(layers, input_shape)
    keras_initialize(network, torch.Generator().manual_seed(config.seed))
    initial = build_network(layers, input_shape)
    initial.load_state_dict(network.state_dict())
    train_network(network, x_train, y_train, config)

    tmp = out / f"model_{model_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    write_model(tmp, network, initial)
    exported = build_network(layers, input_shape)
    load_network_weights(exported, tmp / "weights.hdf5")
    correct = {}
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        correct[split] = per_sample_correct(exported, x, y)
        np.save(tmp / CORRECTNESS_FILES[split], correct[split], allow_pickle=False)
    metrics = {"train_acc": int(correct["train"].sum()) / len(y_train),
               "test_acc": int(correct["test"].sum()) / len(y_test), "hparams": hparams, "seed": config.seed}
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    final = out / f"model_{model_id}"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return metrics


def finalize_zoo(recipe: Recipe, out: str | os.PathLike) -> Path:
    """Write ``model_configs.json`` from every model's metrics; all models must be finished."""
    out = Path(out)
    missing = [m for m, _ in recipe.models() if m not in finished_models(recipe, out)]
    if missing:
        raise TaskFormatError(f"{out}: {len(missing)} models of '{recipe.name}' are not trained yet")
    records = {}
    for model_id, hparams in recipe.models():
        metrics = read_json(out / f"model_{model_id}" / "metrics.json")
        records[model_id] = ModelRecord(model_id, hparams, metrics["train_acc"], metrics["test_acc"])
    write_model_configs(out / "model_configs.json", recipe.to_grid(), records)
    return out


def read_correctness(task_path: str | os.PathLike, model_ids: list[str], split: str = "test") -> np.ndarray | None:
    """Per-sample correctness of every model on a split: bool (models, samples), rows in ``model_ids``
    order; None when a model has no such file (a task not built by this version of the zoo builder)."""
    rows = []
    for model_id in model_ids:
        path = Path(task_path) / f"model_{model_id}" / CORRECTNESS_FILES[split]
        if not path.is_file():
            return None
        try:
            row = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):  # numpy's own message talks of unpickling: not what happened
            raise TaskFormatError(f"{path}: not a readable numpy array file (.npy of bools expected)") from None
        if row.dtype != np.bool_ or row.ndim != 1:
            raise TaskFormatError(f"{path}: expected a 1-d bool array, found {row.dtype} of shape {list(row.shape)}")
        if rows and len(row) != len(rows[0]):
            raise TaskFormatError(f"{path}: {len(row)} samples, model_{model_ids[0]} has {len(rows[0])}")
        rows.append(row)
    return np.stack(rows) if rows else None
