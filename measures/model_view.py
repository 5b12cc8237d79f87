"""The contract between the benchmark and a complexity measure: read this module and nothing else.

A measure is a function ``fn(view, **params) -> float``, registered with ``@measure("name")``
(``measures.registry``). The benchmark calls it once per trained model with a ``ModelView`` of that
model, and with the measure's keyword parameters (their defaults, or ``--param NAME.KEY=VALUE``).

What a measure receives
    ``view.network``: the trained ``torch.nn.Sequential``, in eval mode, mapping float32 NCHW images
    (or (N, features) vectors) to logits; ``view.initial_network``: the same architecture at
    initialization, or None; ``view.x_train``, ``view.y_train``: the training split, unshuffled;
    ``view.sample(n)``: a class-stratified sample of it that every measure of every model of a task
    shares; ``view.num_classes``, ``view.model_id``, ``view.task_name``.

What it returns
    One finite float. Its registered ``sign`` says which way it points: +1 when a larger value
    predicts a larger generalization gap, -1 when a smaller one does. The benchmark never flips the
    value; the sign is what ``pgdl-bench measures`` shows and what the rank scores read.

When it fails
    Raise ``MeasureError`` (``from measures import MeasureError``) with a message naming the model
    (``view.model_id``) and, where it applies, the layer or parameter: the benchmark prints it as one
    line and records the failure. Any other exception, or a NaN or infinite return value, is also
    recorded as a failure of that measure on that model; the other measures still run.

Forward passes
    ``view.forward(x, layer=None)`` runs ``x`` through the network in batches of ``batch_size``
    (default ``view.batch_size``) and returns the logits, or the outputs of ``layer``;
    ``after=LAYER`` starts after a layer instead (to classify hidden representations).
    ``view.activations(layer, n)`` is the output of ``layer`` on ``view.sample(n)``, computed in one
    pass that captures every hidden layer and is shared by all the measures of the model.

Gradients
    ``view.forward(x, grad=True)`` keeps the autograd graph (without it the pass runs under
    ``torch.no_grad`` and returns plain tensors). For the gradient of the logits with respect to the
    input::

        x = x.to(view.device).requires_grad_(True)
        (g,) = torch.autograd.grad(view.forward(x, grad=True).sum(), x)

Layers
    ``view.layer(spec)`` names one layer, ``view.layers(spec)`` one or several. ``spec`` is one of
    ``"first"``, ``"middle"``, ``"last"`` (of ``view.hidden_layers``, the post-activation hidden
    representations, input to output; middle = ``hidden_layers[len // 2]``), ``"penultimate"`` (the
    layer whose output feeds the last weight layer: the classifier's input), ``"logits"`` (the last
    layer), an int index into ``view.layer_names`` (negative from the end: Keras' ``model.layers[i]``,
    the convention of PGDL code; the only meaning an int has anywhere in pgdl-bench), a layer name of
    ``view.layer_names``, or ``"all"`` (every hidden layer; only for ``layers``). A measure states
    its default layer in its docstring.

Weights
    ``view.weight_layers()``: (name, torch layer) of every Conv2D/Dense (the torch ``Conv2d`` or
    ``Linear`` holding kernel and bias); ``view.folded_weights()``: (name, W, b) in float64 with each
    directly following BatchNorm folded in; ``view.weight_matrices()``: those W as 2-D matrices
    (conv kernels reshaped to (out, in * kh * kw)).

Randomness (common random numbers)
    ``view.rng()`` is a ``numpy.random.Generator`` seeded by (task, repeat, the running measure's
    name), not by the model: in a repeat every model of a task draws the same numbers, so what
    differs between two models' values is the models, not their draws (each repeat of ``--repeats``
    draws other numbers; a rerun repeats exactly; a copy of a measure under another name draws
    another stream). The rule for a measure that draws:

    * Draw whatever does not depend on the model (training examples, triplets, pairs, augmentation
      parameters, seeds) from ``view.rng()``: every model of the repeat gets the same draws.
    * Noise whose shape is the model's (a perturbation of its parameters) comes from
      ``view.torch_generator(key)``: a CPU ``torch.Generator`` seeded by (task, repeat, measure,
      ``key``); key it by the parameter's name (``network.named_parameters()``) so that models of the
      same architecture get identical noise, tensor for tensor (models whose tensors differ in shape
      necessarily get different noise for them).
    * ``view.rng(per_model=True)`` (and ``torch_generator(key, per_model=True)``) is a stream of its
      own for each model, seeded by (task, model, measure, repeat), for a measure whose draws must be
      independent across models; say why in its docstring.

    ``view.rng("stream")`` names the stream explicitly (two measures that must see the same draws;
    the fragmentation variants share their triplets this way). ``view.sample(n)`` is shared by the
    task's models in the same way. Never use global random state.

Device
    ``view.device`` (``--device cpu|cuda|cuda:N|mps``, default cpu) is where the network lives; every
    batch ``forward`` runs is moved there and its outputs stay there. A tensor a measure creates
    must be created with ``device=view.device`` (or ``*_like`` an existing one); a test checks it.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import nn

from task_loaders.keras_layers import Activation, Conv2D, Dense, ReLU

from .stats.batchnorm_folding import affine_layer, fold_batchnorm
from .registry import MeasureError

LAYER_SPECS = ("first", "middle", "last", "penultimate", "logits", "all")
# Samples per batch of the pass ``activations`` runs: the same outputs as any other batch size, and
# small batches keep a layer's outputs in the CPU cache (faster on a CPU: ``python -m scripts.perf.fragmentation``
# times batch sizes).
ACTIVATION_BATCH = 64


class ModelView:
    """One trained model and its training split, as a measure sees it (see the module docstring).

    Attributes:
        network: ``torch.nn.Sequential`` in eval mode on ``device``: float32 NCHW (or (N, features)) -> logits.
        initial_network: the same architecture at initialization on ``device``, or None when unknown.
        x_train, y_train: the training split (float32 inputs, int64 labels), unshuffled, on the CPU.
        num_classes: number of output logits.
        model_id, task_name: identity of the model.
        batch_size: default batch size of ``forward``; sample_size: default size of ``sample``.
        device: the ``torch.device`` the network and every forward pass run on.
        repeat: which of ``--repeats K`` independent runs this is (0, the default, is the run every
            stored result before repeats came from); it seeds ``rng``, ``torch_generator``, ``seed`` and
            ``sample_indices``.
    """

    def __init__(
        self,
        network: nn.Sequential,
        train: tuple[torch.Tensor, torch.Tensor],
        initial_network: nn.Sequential | None = None,
        num_classes: int | None = None,
        model_id: str = "",
        task_name: str = "",
        batch_size: int = 512,
        sample_size: int = 1000,
        cache_bytes: int = 1 << 30,
        repeat: int = 0,
        device: str | torch.device = "cpu",
    ):
        self.device = torch.device(device)
        self.network = network.eval().to(self.device)
        self.initial_network = initial_network.eval().to(self.device) if initial_network is not None else None
        self.x_train, self.y_train = train
        self.num_classes = int(num_classes if num_classes is not None else _output_size(network))
        self.model_id = str(model_id)
        self.task_name = task_name
        self.batch_size = batch_size
        self.sample_size = sample_size
        self.cache_bytes = cache_bytes
        if int(repeat) != repeat or repeat < 0:
            raise ValueError(f"repeat must be a non-negative integer, got {repeat!r}")
        self.repeat = int(repeat)
        self.measure_name: str | None = None  # the running measure (set by the registry around each call)
        self._samples: dict[int, torch.Tensor] = {}
        self._activations: dict[tuple[str, int], torch.Tensor] = {}  # insertion order = LRU order
        self.forward_passes = 0  # sample forward passes run for activations (for tests and benchmarks)

    # -- data -------------------------------------------------------------------------------

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @contextmanager
    def running(self, measure_name: str) -> Iterator[None]:
        """Bind ``rng()`` to ``measure_name`` while a measure runs (the registry does this)."""
        outer, self.measure_name = self.measure_name, measure_name
        try:
            yield
        finally:
            self.measure_name = outer

    def seed(self, key: str) -> int:
        """64 bits of sha256(key), with ``#r<k>`` appended for repeat k >= 1 (repeat 0 keeps the old seeds)."""
        if self.repeat:
            key = f"{key}#r{self.repeat}"
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")

    def _stream_key(self, stream: str | None, per_model: bool) -> str:
        stream = stream if stream is not None else self.measure_name
        if stream is None:
            raise MeasureError(f"model {self.model_id}: rng() outside a registered measure needs a stream name")
        return f"{self.task_name}/{self.model_id}/{stream}" if per_model else f"{self.task_name}/{stream}/shared"

    def rng(self, stream: str | None = None, *, per_model: bool = False) -> np.random.Generator:
        """A generator seeded by (task, ``stream``, repeat), ``stream`` by default the running measure's name.

        The same for every model of the task (common random numbers, see the module docstring);
        ``per_model=True``: seeded by (task, model, ``stream``, repeat) instead, another for each model.
        """
        return np.random.default_rng(self.seed(self._stream_key(stream, per_model)))

    def torch_generator(self, key: str, stream: str | None = None, *, per_model: bool = False) -> torch.Generator:
        """A CPU ``torch.Generator`` seeded by ``rng``'s (task, ``stream``, repeat) and ``key``.

        For noise shaped like the model's tensors: with ``key`` a parameter's name, models of the same
        architecture draw the same noise for it (draw on the CPU and move it to ``device``: the same
        values on every device). ``per_model`` as in ``rng``.
        """
        return torch.Generator().manual_seed(self.seed(f"{self._stream_key(stream, per_model)}/{key}"))

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
        """The stratified sample of ``sample_indices(n)``: (inputs, labels), on the CPU."""
        index = self.sample_indices(n)
        return self.x_train[index], self.y_train[index]

    # -- layers -----------------------------------------------------------------------------

    @property
    def layer_names(self) -> list[str]:
        """Names of the network's layers, input to output (Keras-style: conv2d, dense_1, ...)."""
        return [name for name, _ in self.network.named_children()]

    @property
    def hidden_layers(self) -> list[str]:
        """Layers whose outputs are post-activation hidden representations, input to output.

        An ``Activation``/``ReLU`` layer, or a Conv2D/Dense with a non-linear ``activation``; the
        logits layer is not hidden. In the in-house architectures these are the ``Activation`` layers
        after each conv/dense (and its BatchNorm).
        """
        children = list(self.network.named_children())
        names = [name for name, module in children if _is_nonlinear(module)]
        last = children[-1][0] if children else None
        return [n for n in names if n != last]

    def layers(self, spec: str | int = "all") -> list[str]:
        """The layer names ``spec`` stands for (see the module docstring); MeasureError naming the model otherwise."""
        hidden = self.hidden_layers
        names = self.layer_names
        if isinstance(spec, str) and spec.lstrip("-").isdigit():
            spec = int(spec)
        if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
            if not -len(names) <= spec < len(names):
                raise MeasureError(f"model {self.model_id}: layer index {int(spec)} is out of range "
                                   f"({len(names)} layers: {', '.join(names)})")
            return [names[spec]]
        if not isinstance(spec, str):
            raise MeasureError(f"model {self.model_id}: a layer is one of {', '.join(LAYER_SPECS)}, "
                               f"a layer index or a layer name; got {spec!r}")
        if spec in self.layer_names:
            return [spec]
        if spec == "logits":
            return self.layer_names[-1:]
        if spec == "penultimate":
            return [self._penultimate()]
        if spec in ("first", "middle", "last", "all"):
            if not hidden:
                raise MeasureError(f"model {self.model_id}: has no hidden layer "
                                   f"(layers: {', '.join(self.layer_names)})")
            return {"first": hidden[:1], "middle": [hidden[len(hidden) // 2]], "last": hidden[-1:],
                    "all": hidden}[spec]
        raise MeasureError(f"model {self.model_id}: no layer {spec!r} (layers: {', '.join(self.layer_names)}; "
                           f"or one of {', '.join(LAYER_SPECS)}, or a layer index)")

    def layer(self, spec: str | int) -> str:
        """The one layer name ``spec`` stands for (``"all"`` is refused here)."""
        if spec == "all":
            raise MeasureError(f"model {self.model_id}: this needs one layer, not 'all'")
        return self.layers(spec)[0]

    def _penultimate(self) -> str:
        names = self.layer_names
        weighted = [names.index(name) for name, _ in self.weight_layers()]
        if len(weighted) < 2 or weighted[-1] == 0:
            raise MeasureError(f"model {self.model_id}: the network has no hidden layer before its classifier "
                               f"(layers: {', '.join(names)})")
        return names[weighted[-1] - 1]

    def _index(self, layer: str) -> int:
        return self.layer_names.index(self.layer(layer))

    # -- forward passes ---------------------------------------------------------------------

    def forward(self, x: torch.Tensor, layer: str | int | None = None, *, after: str | int | None = None,
                grad: bool = False, batch_size: int | None = None) -> torch.Tensor:
        """The outputs of ``layer`` (default: the logits) for inputs ``x``, in batches, on ``device``.

        ``after``: ``x`` is the output of that layer (a hidden representation) and the pass starts at
        the next layer. ``grad``: keep the autograd graph (else the pass runs under ``torch.no_grad``).
        ``batch_size``: samples per pass (default ``self.batch_size``); the outputs are concatenated.
        """
        modules = list(self.network.children())
        start = 0 if after is None else self._index(after) + 1
        stop = len(modules) if layer is None else self._index(layer) + 1
        modules = modules[start:stop]
        step = int(batch_size or self.batch_size)
        outputs = []
        with torch.enable_grad() if grad else torch.no_grad():
            for begin in range(0, max(len(x), 1), step):
                h = self._batch(x[begin : begin + step])
                for module in modules:
                    h = module(h)
                outputs.append(h)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        """A batch on ``device``; images in channels-last memory order (same values, up to float rounding,
        and faster convolutions on a CPU thread, see ``python -m scripts.perf.fragmentation``)."""
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    @torch.no_grad()
    def activations(self, layer: str | int, n: int | None = None) -> torch.Tensor:
        """Outputs of ``layer`` (any ``layer`` spec but "all") for the shared sample ``sample(n)``, cached.

        One streamed pass over the sample (in batches of at most ``ACTIVATION_BATCH``) captures every
        hidden layer and the logits at once, each stored contiguous in NCHW order; as many as fit in
        ``cache_bytes`` are kept (the requested one always), so the measures of a model that look at
        the same layers share one forward pass, and memory stays bounded.
        """
        layer = self.layer(layer)
        n_samples = len(self.sample_indices(n))
        key = (layer, n_samples)
        if key in self._activations:
            self._activations[key] = self._activations.pop(key)  # most recently used
            return self._activations[key]
        x, _ = self.sample(n)
        wanted = set(self.hidden_layers) | {layer, self.layer_names[-1]}
        chunks: dict[str, list[torch.Tensor]] = {name: [] for name in wanted}
        step = min(self.batch_size, ACTIVATION_BATCH)
        for start in range(0, len(x), step):
            h = self._batch(x[start : start + step])
            for name, module in self.network.named_children():
                h = module(h)
                if name in chunks:
                    chunks[name].append(h.contiguous())  # stored in NCHW order: the statistics flatten it
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

    # -- weights ----------------------------------------------------------------------------

    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """(name, torch ``Conv2d``/``Linear`` holding kernel and bias) of every weight layer, input to output."""
        return [(name, affine_layer(m)) for name, m in self.network.named_children() if affine_layer(m) is not None]

    def folded_weights(self, standalone: bool = False) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(layer name, W, b) per weight layer with a following BatchNorm folded in; see ``fold_batchnorm``."""
        return fold_batchnorm(self.network, standalone=standalone)

    def weight_matrices(self) -> list[np.ndarray]:
        """The folded weights as 2-D float64 matrices (out, in * kh * kw); unfoldable BatchNorms as diag(s)."""
        mats = [w.reshape(w.shape[0], -1).numpy() for _, w, _ in self.folded_weights(standalone=True)]
        if not mats:
            raise MeasureError(f"model {self.model_id}: the network has no Conv2D or Dense layer")
        return mats


def _is_nonlinear(module: nn.Module) -> bool:
    """A layer whose output is a post-activation representation (ReLU, Activation, or an activated Conv2D/Dense)."""
    if isinstance(module, (ReLU, nn.ReLU)):
        return True
    return isinstance(module, (Activation, Conv2D, Dense)) and module.activation not in ("linear", "softmax")


def _output_size(network: nn.Module) -> int:
    size = getattr(network, "num_outputs", None)
    if size is None:
        raise ValueError("num_classes must be given for a network without 'num_outputs'")
    return int(size)
