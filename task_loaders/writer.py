"""Write whole PGDL task folders, so any network built from a layer list can be exported."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .keras_layers import KerasSequential
from .keras_weights import write_network_weights
from .model_configs import Grid, ModelRecord, write_model_configs
from .tfrecord import write_split


@dataclass
class ExportedModel:
    hparams: dict[str, Any]
    train_acc: float
    test_acc: float
    network: KerasSequential
    initial_network: KerasSequential | None = None


def write_model(model_dir: str | os.PathLike, network: KerasSequential, initial_network=None) -> None:
    """Write ``config.json``, ``weights.hdf5`` and (if given) ``weights_init.hdf5`` of one model."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    config = {"model_config": network.layer_config, "input_shape": list(network.input_shape)}
    (model_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_network_weights(model_dir / "weights.hdf5", network)
    if initial_network is not None:
        write_network_weights(model_dir / "weights_init.hdf5", initial_network)


def to_stored_layout(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """NCHW tensors as the NHWC arrays PGDL shards hold (feature vectors unchanged)."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x, dtype=np.float32)


def write_task(
    path: str | os.PathLike,
    grid: Grid,
    models: dict[str, ExportedModel],
    train: tuple,
    test: tuple,
    records_per_shard: int = 10_000,
) -> Path:
    """Write a complete task folder: models, ``model_configs.json`` and both data splits.

    ``train``/``test`` are (inputs, labels) in the networks' layout (NCHW or (N, features)).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for split, (x, y) in (("train", train), ("test", test)):
        y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        write_split(path / "dataset_1" / split, to_stored_layout(x), y, records_per_shard)
    records = {}
    for model_id, model in models.items():
        write_model(path / f"model_{model_id}", model.network, model.initial_network)
        records[model_id] = ModelRecord(model_id, dict(model.hparams), float(model.train_acc), float(model.test_acc))
    write_model_configs(path / "model_configs.json", grid, records)
    return path
