"""What a measure sees of one model: its network, initial network, training data and hidden layers.

Measures never open files; the benchmark builds a ``ModelView`` for each model and passes it to every
measure of that model.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn


class ModelView:
    """One trained model and its training split.

    Attributes:
        network: ``torch.nn.Sequential`` in eval mode, float32 NCHW (or (N, features)) -> logits.
        initial_network: the same architecture at initialization, or None when unknown.
        x_train, y_train: the training split (float32 inputs, int64 labels), unshuffled.
        num_classes: number of output logits.
        model_id, hparams: identity of the model in its task.
    """

    def __init__(
        self,
        network: nn.Sequential,
        train: tuple[torch.Tensor, torch.Tensor],
        initial_network: nn.Sequential | None = None,
        num_classes: int | None = None,
        model_id: str = "",
        hparams: dict[str, Any] | None = None,
        task_name: str = "",
        batch_size: int = 512,
    ):
        self.network = network.eval()
        self.initial_network = initial_network.eval() if initial_network is not None else None
        self.x_train, self.y_train = train
        self.num_classes = int(num_classes if num_classes is not None else _output_size(network))
        self.model_id = str(model_id)
        self.hparams = dict(hparams or {})
        self.task_name = task_name
        self.batch_size = batch_size

    # -- data -------------------------------------------------------------------------------

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    def batches(self, limit: int | None = None, batch_size: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The first ``limit`` training samples (all by default) in order, in batches."""
        n = self.num_train if limit is None else min(limit, self.num_train)
        step = batch_size or self.batch_size
        for start in range(0, n, step):
            stop = min(start + step, n)
            yield self.x_train[start:stop], self.y_train[start:stop]

    def rng(self, measure_name: str) -> np.random.Generator:
        """A random generator seeded by (task, model, measure): reruns repeat exactly."""
        digest = hashlib.sha256(f"{self.task_name}/{self.model_id}/{measure_name}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    # -- hidden layers ----------------------------------------------------------------------

    @property
    def layer_names(self) -> list[str]:
        """Names of the network's layers, input to output (Keras-style: conv2d, dense_1, ...)."""
        return [name for name, _ in self.network.named_children()]

    def _index(self, layer: str) -> int:
        names = self.layer_names
        if layer not in names:
            raise KeyError(f"model {self.model_id}: no layer '{layer}' (layers: {', '.join(names)})")
        return names.index(layer)

    @torch.inference_mode()
    def forward_to(self, layer: str, x: torch.Tensor) -> torch.Tensor:
        """The output of ``layer`` (inclusive) for inputs ``x``."""
        stop = self._index(layer) + 1
        for module in list(self.network.children())[:stop]:
            x = module(x)
        return x

    @torch.inference_mode()
    def forward_from(self, layer: str, h: torch.Tensor) -> torch.Tensor:
        """Run the layers after ``layer`` on its output ``h``: the logits."""
        start = self._index(layer) + 1
        for module in list(self.network.children())[start:]:
            h = module(h)
        return h

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def _output_size(network: nn.Module) -> int:
    size = getattr(network, "num_outputs", None)
    if size is None:
        raise ValueError("num_classes must be given for a network without 'num_outputs'")
    return int(size)
