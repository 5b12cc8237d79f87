"""What the PGDL winners' code shares: which layer it reads, how tf.data draws its samples, one forward pass.

The winners' measures (``representations.py``, ``augmented.py`` beside this file) are ports of code written for the PGDL
starting kit: Keras models and a ``tf.data.Dataset`` of the training split in its stored order. Three
of its habits decide what those measures compute, so they live here, once:

* **Layer.** Natekar & Sharma's code reads "the first layer whose Keras config has ``filters`` or
  ``units``" (the first Conv2D or Dense, its built-in activation included, before any separate
  BatchNorm or Activation layer): ``first_weighted_layer``.
* **Sampling.** Their samples come from ``dataset.repeat(-1).shuffle(B)`` (Natekar & Sharma: B = 5000;
  Lassance et al. per class: B = 100). ``measures.stats.tf_random.shuffle_draws`` runs ``tf.data``'s
  shuffle: with the dataset's seeds (``tf_random.op_seeds``) it yields TensorFlow's samples element for element.
* **Seeds.** Natekar & Sharma's code fixes its seeds (``shuffle(5000, seed=1)``, ``DataAugmentor(seed=0)``,
  ``np.random.seed(2)``), so every model of a task is measured on the same samples, mixup partners and
  augmentations; their ports use those seeds (``authors_seed``: repeat 0 the authors' own, another
  repeat another seed shared by the task's models) and TensorFlow's generator (``tf_random``), so they
  draw what the authors' code draws. Lassance et al. (VPM) and Aithal et al. (``augment_robustness``)
  set no seed: their ports draw what their code draws under the seed 0 (``tf.random.set_seed(0)``,
  ``np.random.seed(0)``; ``vpm_seed``, ``aithal_seed``), again shared.
* **Forward passes.** The ports run the network through ``view.forward`` in float32, as the authors' Keras models.
"""

from __future__ import annotations

import numpy as np

from ...model_view import ModelView
from ...registry import MeasureError

WEIGHT_LAYERS = ("Conv2D", "Dense")  # the layer classes whose Keras config has `filters` or `units`


def task_rng(view: ModelView, name: str) -> np.random.Generator:
    """A generator seeded by (task, ``name``, repeat), the same for every model of the task; reruns repeat exactly.

    ``authors_seed`` draws the seed of repeat k >= 1 (``--repeats``) from it, shared again by every
    model of the task."""
    return view.rng(name)  # seeded by (task, name, repeat): "<task>/<name>/shared", #r<k> for repeat k >= 1


def first_weighted_layer(view: ModelView) -> str:
    """The name of the first Conv2D or Dense layer (the first with ``filters`` or ``units``)."""
    for name, module in view.network.named_children():
        if type(module).__name__ in WEIGHT_LAYERS:
            return name
    raise MeasureError(f"model {view.model_id}: the network has no Conv2D or Dense layer "
                       f"(layers: {', '.join(view.layer_names)})")


def resolve_layer(view: ModelView, layer) -> str:
    """``layer``: None (``first_weighted_layer``, the winners' default), else what ``view.layer`` accepts:
    an index into ``view.layer_names`` (negative from the end), a name, or a keyword."""
    if layer is None:
        return first_weighted_layer(view)
    if isinstance(layer, float):
        raise MeasureError(f"model {view.model_id}: layer must be None, a layer index or a layer name; got {layer!r}")
    return view.layer(layer)


def authors_seed(view: ModelView, name: str, seed: int) -> int:
    """The seed the authors fixed (``seed``) in repeat 0; in repeat k >= 1 another, from ``task_rng(view, name)``.

    Every model of a task gets the same seed in a repeat, as the authors' fixed seeds give them.
    """
    other = int(task_rng(view, name).integers(1, 2**31 - 1))
    return int(seed) if view.repeat == 0 else other
