"""A PGDL task folder, loaded lazily: metadata at once, networks and data splits on demand."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import TaskFormatError
from .json_files import read_json
from .keras_layers import KerasSequential, build_network, keras_input_shape
from .keras_weights import load_network_weights
from .model_configs import Grid, ModelRecord, read_model_configs
from .tfrecord import read_split


@dataclass
class LoadedModel:
    """One trained model: ``network`` (eval mode, NCHW or (N, features) float32 in, logits out)."""

    model_id: str
    network: KerasSequential
    initial_network: KerasSequential | None


def _id_key(model_id: str):
    return (0, int(model_id), "") if model_id.isdigit() else (1, 0, model_id)


def find_metrics(path: Path, reference: str | os.PathLike | None = None) -> Path:
    """Where a task's ``model_configs.json`` lives: beside the models, in ``reference``, or in the
    public zips' sibling tree (``.../input_data/<task>`` -> ``.../reference_data/<task>``)."""
    candidates = []
    if reference is not None:
        reference = Path(reference)
        candidates.append(reference if reference.suffix == ".json" else reference / "model_configs.json")
    else:
        candidates.append(path / "model_configs.json")
        # Absolute (not resolved: symlinks kept) so that ".", "task1" or "../task1" see their parent.
        absolute = Path(os.path.abspath(path))
        if absolute.parent.name == "input_data":
            candidates.append(absolute.parent.parent / "reference_data" / absolute.name / "model_configs.json")
    for candidate in candidates:
        if candidate.exists():  # a device or FIFO is found here and refused when read, with its name
            return candidate
    raise TaskFormatError(
        f"{path}: no model_configs.json (looked in {', '.join(str(c) for c in candidates)}); "
        "pass the reference folder that holds it"
    )


class Task:
    """A task folder; see ``load_task``."""

    def __init__(self, path: str | os.PathLike, reference: str | os.PathLike | None = None, *, models: bool = True):
        self.path = Path(path)
        if not self.path.is_dir():
            raise TaskFormatError(f"{self.path}: task folder not found")
        self.name = self.path.resolve().name
        self.metrics_path = find_metrics(self.path, reference)
        self.grid: Grid
        self.grid, self.records = read_model_configs(self.metrics_path)
        self.model_ids: list[str] = sorted(self.records, key=_id_key)
        for model_id in self.model_ids if models else ():
            if not self.model_dir(model_id).is_dir():
                raise TaskFormatError(f"{self.model_dir(model_id)}: model folder of model {model_id} not found")
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"Task({str(self.path)!r}, {len(self.model_ids)} models, hparams={list(self.grid.names)})"

    # -- metadata ---------------------------------------------------------------------------

    def hparams(self, model_id: str) -> dict[str, Any]:
        return dict(self._record(model_id).hparams)

    def gap(self, model_id: str) -> float:
        """Generalization gap: train accuracy minus test accuracy."""
        return self._record(model_id).gap

    def train_acc(self, model_id: str) -> float:
        return self._record(model_id).train_acc

    def test_acc(self, model_id: str) -> float:
        return self._record(model_id).test_acc

    def gaps(self) -> np.ndarray:
        return np.array([self.gap(m) for m in self.model_ids], dtype=np.float64)

    def _record(self, model_id: str) -> ModelRecord:
        model_id = str(model_id)
        if model_id.startswith("model_"):
            model_id = model_id[len("model_"):]
        try:
            return self.records[model_id]
        except KeyError:
            raise TaskFormatError(f"{self.metrics_path}: no model {model_id}") from None

    def model_dir(self, model_id: str) -> Path:
        return self.path / f"model_{model_id}"

    def config(self, model_id: str) -> tuple[list, list]:
        """The layer list and input shape of a model's ``config.json``."""
        path = self.model_dir(model_id) / "config.json"
        data = read_json(path)
        if not isinstance(data, dict) or "model_config" not in data or "input_shape" not in data:
            raise TaskFormatError(f"{path}: expected keys 'model_config' and 'input_shape'")
        return data["model_config"], data["input_shape"]

    @cached_property
    def input_shape(self) -> tuple[int, ...]:
        """The Keras input shape (H, W, C) or (features,) shared by the task's models."""
        where = str(self.model_dir(self.model_ids[0]) / "config.json")
        return keras_input_shape(self.config(self.model_ids[0])[1], where)

    # -- models -----------------------------------------------------------------------------

    def build_network(self, model_id: str) -> KerasSequential:
        """The model's architecture with fresh weights (nothing read from the weight files)."""
        layers, input_shape = self.config(model_id)
        return build_network(layers, input_shape, where=str(self.model_dir(model_id) / "config.json"))

    def load_model(self, model_id: str) -> LoadedModel:
        """Build the network of one model and load ``weights.hdf5`` (and ``weights_init.hdf5`` if present)."""
        model_id = str(model_id)
        self._record(model_id)
        network = self.build_network(model_id)
        load_network_weights(network, self.model_dir(model_id) / "weights.hdf5")
        initial = None
        init_path = self.model_dir(model_id) / "weights_init.hdf5"
        if init_path.exists():
            initial = self.build_network(model_id)
            load_network_weights(initial, init_path)
        return LoadedModel(model_id, network.eval(), initial.eval() if initial is not None else None)

    # -- data -------------------------------------------------------------------------------

    def _split_dir(self, split: str) -> Path:
        folder = self.path / "dataset_1"
        if not folder.is_dir():
            datasets = sorted(self.path.glob("dataset_*"))
            if len(datasets) != 1:
                raise TaskFormatError(f"{self.path}: no dataset_1 folder with the train and test splits")
            folder = datasets[0]
        return folder / split

    def _split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self._splits:
            self._splits[split] = read_split_tensors(self._split_dir(split), self.input_shape)
        return self._splits[split]

    def train_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Training inputs (float32, NCHW or (N, features)) and labels (int64), read once and cached."""
        return self._split("train")

    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split("test")


def read_split_tensors(directory: str | os.PathLike, input_shape=None) -> tuple[torch.Tensor, torch.Tensor]:
    """A split folder as torch tensors: inputs float32 NCHW (stored NHWC) or (N, features), labels int64."""
    x, y = read_split(directory)
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise TaskFormatError(f"{directory}: inputs of shape {list(x.shape[1:])}, the models take {list(input_shape)}")
    xt = torch.from_numpy(x)
    if xt.dim() == 4:
        xt = xt.permute(0, 3, 1, 2).contiguous()
    return xt, torch.from_numpy(y)


def load_task(path: str | os.PathLike, reference: str | os.PathLike | None = None, *, models: bool = True) -> Task:
    """Open a PGDL task folder.

    ``model_configs.json`` is read and validated (complete grid, one model per cell) at once; networks
    are built only by ``task.load_model`` and data splits read only by ``task.train_split`` /
    ``task.test_split``. ``reference`` is the folder (or file) holding ``model_configs.json`` when the
    metrics live apart from the models, as in the public zips' ``reference_data`` tree.
    ``models=False`` opens a folder that holds only ``model_configs.json`` (such as
    ``reference_data/<task>``): enough for scoring predictions, not for loading networks.
    """
    return Task(path, reference, models=models)
