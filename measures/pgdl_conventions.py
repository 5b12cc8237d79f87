"""What the PGDL winners' code shares: which layer it reads, how tf.data draws its samples, one forward pass.

The winners' measures (``winners.py``, ``augmentation.py``) are ports of code written for the PGDL
starting kit: Keras models and a ``tf.data.Dataset`` of the training split in its stored order. Three
of its habits decide what those measures compute, so they live here, once:

* **Layer.** Natekar & Sharma's code reads "the first layer whose Keras config has ``filters`` or
  ``units``" (the first Conv2D or Dense, its built-in activation included, before any separate
  BatchNorm or Activation layer): ``first_weighted_layer``.
* **Sampling.** Their samples come from ``dataset.repeat(-1).shuffle(B)`` (Natekar & Sharma: B = 5000;
  Lassance et al. per class: B = 100). ``tf.data``'s shuffle keeps a buffer of the next B elements of
  the stream, emits a uniformly chosen one and refills its slot with the next stream element.
  ``shuffle_buffer_draws`` runs that algorithm with a numpy generator: the draws have the distribution
  of TensorFlow's (a dataset smaller than B is sampled nearly with replacement, a larger one favours
  its first elements), not its exact values, which depend on TensorFlow's own generator.
* **Seeds.** Natekar & Sharma's code fixes its seeds (``shuffle(5000, seed=1)``, ``DataAugmentor(seed=0)``,
  ``np.random.seed(2)``), so every model of a task is measured on the same samples, mixup partners and
  augmentations. Their ports draw from ``task_rng``, seeded by the task and the measure only, to do
  the same (common random numbers: model-to-model differences are not sampling noise).
* **Forward passes.** Every forward pass of the winners' ports goes through ``run_layers``.
"""

from __future__ import annotations


import numpy as np
import torch

from .model_view import ModelView
from .registry import MeasureError

WEIGHT_LAYERS = ("Conv2D", "Dense")  # the layer classes whose Keras config has `filters` or `units`
BATCH = 256  # forward-pass batch size (results do not depend on it beyond float rounding)


def task_rng(view: ModelView, name: str) -> np.random.Generator:
    """A generator seeded by (task, ``name``, repeat), the same for every model of the task; reruns repeat exactly.

    Repeat 0 keeps the seed these ports had before repeats existed; repeat k >= 1 (``--repeats``) draws
    other samples, shared again by every model of the task."""
    return np.random.default_rng(view.seed(f"{view.task_name}/{name}/shared"))


def first_weighted_layer(view: ModelView) -> str:
    """The name of the first Conv2D or Dense layer (the first with ``filters`` or ``units``)."""
    for name, module in view.network.named_children():
        if type(module).__name__ in WEIGHT_LAYERS:
            return name
    raise MeasureError(f"model {view.model_id}: the network has no Conv2D or Dense layer "
                       f"(layers: {', '.join(view.layer_names)})")


def resolve_layer(view: ModelView, layer) -> str:
    """``layer``: None (``first_weighted_layer``), an index into ``view.layer_names`` (negative from the end) or a name."""
    names = view.layer_names
    if layer is None:
        return first_weighted_layer(view)
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not -len(names) <= layer < len(names):
            raise MeasureError(f"model {view.model_id}: layer index {layer} is out of range "
                               f"(layers: {', '.join(names)})")
        return names[layer]
    if isinstance(layer, str):
        if layer not in names:
            raise MeasureError(f"model {view.model_id}: no layer '{layer}' (layers: {', '.join(names)})")
        return layer
    raise MeasureError(f"model {view.model_id}: layer must be None, a layer index or a layer name; got {layer!r}")


def shuffle_buffer_draws(stream, count: int, buffer_size: int, rng: np.random.Generator) -> np.ndarray:
    """The first ``count`` elements of ``tf.data``'s ``shuffle(buffer_size)`` over ``stream`` repeated forever.

    ``stream``: the elements in dataset order (e.g. training indices), non-empty; it is cycled, as
    ``repeat(-1)`` before ``shuffle`` does. The buffer starts with the first ``buffer_size`` stream
    elements; each draw takes a uniform position of the buffer and puts the next stream element there.
    """
    stream = np.asarray(stream)
    if len(stream) == 0:
        raise ValueError("shuffle_buffer_draws needs a non-empty stream")
    buffer = stream[np.arange(buffer_size) % len(stream)].copy()
    following = buffer_size
    out = np.empty(count, dtype=stream.dtype)
    for i, slot in enumerate(rng.integers(0, buffer_size, size=count)):
        out[i] = buffer[slot]
        buffer[slot] = stream[following % len(stream)]
        following += 1
    return out


def run_layers(view: ModelView, x: torch.Tensor, stop: str | None = None, start: str | None = None,
               grad: bool = False, batch_size: int = BATCH) -> torch.Tensor:
    """The output of layer ``stop`` (the logits when None) for the input of the layer after ``start``.

    ``start`` None: ``x`` is the network's input; otherwise ``x`` is ``start``'s output. Batches of
    ``batch_size``; with ``grad`` the pass is differentiable (one batch, no inference mode).
    """
    names = view.layer_names
    first = 0 if start is None else names.index(start) + 1
    last = len(names) if stop is None else names.index(stop) + 1
    modules = list(view.network.children())[first:last]

    def run(h):
        for module in modules:
            h = module(h)
        return h

    if grad:
        with torch.enable_grad():
            return run(x)
    with torch.no_grad():
        return torch.cat([run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
