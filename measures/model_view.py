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
        repeat: which of ``--repeats K`` independent runs this is (0, the default, is the run every
            stored result before repeats came from); it seeds ``rng`` and ``sample_indices``.
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
        sample_size: int = 1000,
        cache_bytes: int = 1 << 30,
        repeat: int = 0,
    ):
        self.network = network.eval()
        self.initial_network = initial_network.eval() if initial_network is not None else None
        self.x_train, self.y_train = train
        self.num_classes = int(num_classes if num_classes is not None else _output_size(network))
        self.model_id = str(model_id)
        self.hparams = dict(hparams or {})
        self.task_name = task_name
        self.batch_size = batch_size
        self.sample_size = sample_size
        self.cache_bytes = cache_bytes
        if int(repeat) != repeat or repeat < 0:
            raise ValueError(f"repeat must be a non-negative integer, got {repeat!r}")
        self.repeat = int(repeat)
        self._samples: dict[int, torch.Tensor] = {}
        self._activations: dict[tuple[str, int], torch.Tensor] = {}  # insertion order = LRU order
        self.forward_passes = 0  # sample forward passes run for activations (for tests and benchmarks)

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

    def seed(self, key: str) -> int:
        """64 bits of sha256(key), with ``#r<k>`` appended for repeat k >= 1 (repeat 0 keeps the old seeds).

        Measures that need a stream shared by every model of a task (common random numbers) seed a
        generator with ``view.seed(f"{view.task_name}/<name>")``; ``rng`` is the per-model stream.
        """
        if self.repeat:
            key = f"{key}#r{self.repeat}"
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")

    def rng(self, measure_name: str) -> np.random.Generator:
        """A random generator seeded by (task, model, measure, repeat): reruns repeat exactly."""
        return np.random.default_rng(self.seed(f"{self.task_name}/{self.model_id}/{measure_name}"))

    def sample_indices(self, n: int | None = None) -> torch.Tensor:
        """Indices of a class-stratified sample of ``n`` training examples (default ``sample_size``).

        Seeded by the task and the repeat, not the model: every model of a task is measured on the
        same samples in a repeat, and every measure of a run shares them (and their cached
        activations). Another repeat draws another sample, since which examples are drawn is part
        of a measure's Monte Carlo error (when the split is no larger than ``n``, every repeat
        gets the whole split).
        """
        n = min(self.sample_size if n is None else n, self.num_train)
        if n not in self._samples:
            rng = np.random.default_rng(self.seed(f"{self.task_name}/sample"))
            labels = self.y_train.numpy()
            order = rng.permutation(len(labels))
            # round-robin over classes in a random order: as balanced as the classes allow
            by_class = [order[labels[order] == c] for c in np.unique(labels)]
            picked = []
            depth = 0
            while len(picked) < n:
                for members in by_class:
                    if depth < len(members) and len(picked) < n:
                        picked.append(members[depth])
                depth += 1
            self._samples[n] = torch.as_tensor(np.sort(np.array(picked, dtype=np.int64)))
        return self._samples[n]

    def sample(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The stratified sample of ``sample_indices(n)``: (inputs, labels)."""
        index = self.sample_indices(n)
        return self.x_train[index], self.y_train[index]

    # -- hidden layers ----------------------------------------------------------------------

    @property
    def hidden_layers(self) -> list[str]:
        """Layers whose outputs are post-activation hidden representations, input to output.

        An ``Activation``/``ReLU`` layer, or a Conv2D/Dense with a non-linear ``activation``; the
        logits layer is not hidden. In the in-house architectures these are the ``Activation`` layers
        after each conv/dense (and its BatchNorm).
        """
        names = []
        children = list(self.network.named_children())
        for i, (name, module) in enumerate(children):
            kind = type(module).__name__
            nonlinear = kind == "ReLU" or getattr(module, "activation", "linear") not in ("linear", "softmax")
            if kind in ("Activation", "ReLU", "Conv2D", "Dense") and nonlinear:
                names.append(name)
        last = children[-1][0] if children else None
        return [n for n in names if n != last]

    @torch.inference_mode()
    def activations(self, layer: str, n: int | None = None) -> torch.Tensor:
        """Outputs of ``layer`` for the shared sample (``sample(n)``), computed once and cached.

        One streamed pass over the sample captures every hidden layer at once; as many as fit in
        ``cache_bytes`` are kept (the requested one always), so the measures of a model that look at
        the same layers share one forward pass, and memory stays bounded.
        """
        self._index(layer)
        n_samples = len(self.sample_indices(n))
        key = (layer, n_samples)
        if key in self._activations:
            self._activations[key] = self._activations.pop(key)  # most recently used
            return self._activations[key]
        x, _ = self.sample(n)
        wanted = set(self.hidden_layers) | {layer}
        chunks: dict[str, list[torch.Tensor]] = {name: [] for name in wanted}
        for start in range(0, len(x), self.batch_size):
            h = x[start : start + self.batch_size]
            for name, module in self.network.named_children():
                h = module(h)
                if name in chunks:
                    chunks[name].append(h)
        self.forward_passes += 1
        computed = {name: torch.cat(parts) for name, parts in chunks.items() if parts}
        self._store(key, computed[layer])
        for name, tensor in computed.items():
            if name != layer and (name, n_samples) not in self._activations:
                self._store((name, n_samples), tensor, required=False)
        return self._activations[key]

    def _store(self, key: tuple[str, int], tensor: torch.Tensor, required: bool = True) -> None:
        size = tensor.numel() * tensor.element_size()
        used = sum(t.numel() * t.element_size() for t in self._activations.values())
        while self._activations and used + size > self.cache_bytes:
            if not required:
                return  # optional layers never evict others
            oldest = next(iter(self._activations))
            used -= self._activations[oldest].numel() * self._activations[oldest].element_size()
            del self._activations[oldest]
        self._activations[key] = tensor

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
