"""k-variance normalized margins: Chuang, Mroueh, Greenewald, Torralba & Jegelka, "Measuring Generalization
with Optimal Transport", NeurIPS 2021 (arXiv 2106.03314), as their PGDL submissions compute them.

Code: github.com/chingyaoc/kV-Margin (MIT), ``kV-Margin/complexity.py`` (``kv_margin``) and
``kV-GN-Margin/complexity.py`` (``kv_gn_margin``); docs/fidelity.md compares the ports with it model by
model. Both read one hidden representation h = phi(x) and the logits f = g(h):

* **Sample.** Under numpy's seed ``seed`` (0: their ``np.random.seed(0)``), ``min(N, 200 C)`` training
  images drawn without replacement (C = the largest training label + 1), then one random order of
  each class's sampled images, class 0 first (``measures.stats.kv_margins.authors_draws``: the same
  draws as their code, from numpy's legacy generator).
* **Margin.** The output margin ``f_y - max_{j != y} f_j`` of each sampled image (of the first
  ``200 * floor(n / 200)`` draws: their batches of 200, the last partial one dropped, which only cuts
  when the split holds fewer than 200 C images). ``kv_gn_margin`` divides each by
  ``||d(f_y - f_j)/dh||_2 + 1e-6``, j the runner-up class (the gradient-normalized margin). The
  median over the images is the margin score.
* **k-variance.** For each class c, W1 (Euclidean cost) between the first and the second half of its
  sampled images' representations, k = half their number (an odd last one left out): one draw of
  the k-variance (``uniform_w1``: an exact assignment, as POT's ``emd2`` in their code).
* **Normalizer.** gamma = sum_c w_c kV_c L_c for ``kv_margin``, with w_c the class's share of the whole
  training split and L_c = max over the class's sampled images of ``||d(f_y - f_j)/dh||_2`` (their
  Lipschitz estimate); gamma = sum_c w_c kV_c for ``kv_gn_margin``.
* **Value.** - median margin / gamma: larger predicts a larger generalization gap (sign +1).

**Layer.** Their code picks a layer index l of the Keras model, the first in a list of candidates whose
Keras config has ``strides`` (a Conv2D or a pooling layer), and reads its input, the output of layer
l - 1. ``layer="shallow"`` tries l = 2, 3, 4, 5 (their ``shallow=True``, the README's "1st layer"),
``layer="deep"`` tries 8, 9, 6, 7, 5, 4, 3, 2 (``shallow=False``, the "8th layer"); an int l reads the
input of layer l of ``view.layer_names`` directly. The defaults are each submission's own:
``kv_margin`` shallow, ``kv_gn_margin`` deep.

**Randomness.** Repeat 0 draws under ``seed`` (default 0, the authors' seed), so it draws what their
code draws and every model of a task sees the same images and halves; a repeat k >= 1 draws under
another seed, again shared by the task's models (``_repeat_seed``). Forward passes and gradients run in
float32 through ``view.forward``, in batches of one class's images; W1, norms and the final arithmetic
are float64.

Impossible cases raise ``MeasureError`` naming the model: no candidate layer with strides, a class of the
split with fewer than 2 sampled images (their code fails there), no margin (fewer than 200 images), a
normalizer of 0. A class with no image in the split has weight 0 and is skipped (their code yields NaN).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from task_loaders.keras_layers import Conv2D, Pooling2D

from ..citations import CHUANG_KV, CHUANG_KV_CODE
from ..model_view import ModelView
from ..registry import MeasureError, measure
from ..stats.kv_margins import authors_draws, half_split_w1, margins_and_gradient_norms

CANDIDATES = {"shallow": (2, 3, 4, 5), "deep": (8, 9, 6, 7, 5, 4, 3, 2)}  # Keras layer indices, in their order
STRIDED = (Conv2D, Pooling2D, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)  # the layers whose Keras config has strides
BATCH = 200  # the authors' margin batches (their 200 images per class)
_SOURCE = f"{CHUANG_KV}; code {CHUANG_KV_CODE}"


def representation_layer(view: ModelView, layer) -> str:
    """The name of the layer whose output is read: the one before the Keras layer ``layer`` picks."""
    modules = list(view.network.named_children())
    if isinstance(layer, str) and layer in CANDIDATES:
        picked = next((i for i in CANDIDATES[layer] if i < len(modules) and isinstance(modules[i][1], STRIDED)), None)
        if picked is None:
            raise MeasureError(f"model {view.model_id}: none of the layers {list(CANDIDATES[layer])} is a Conv2D or "
                               f"pooling layer (layer={layer!r}; layers: {', '.join(view.layer_names)})")
        return modules[picked - 1][0]
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not 1 <= layer < len(modules):
            raise MeasureError(f"model {view.model_id}: layer index {int(layer)} is out of range 1..{len(modules) - 1} "
                               f"(its input is read; layers: {', '.join(view.layer_names)})")
        return modules[int(layer) - 1][0]
    raise MeasureError(f"model {view.model_id}: layer must be 'shallow', 'deep' or a layer index, got {layer!r}")


def _repeat_seed(view: ModelView, name: str, seed: int) -> int:
    """``seed`` in repeat 0; in repeat k >= 1 a seed drawn from a stream of (task, ``name``, k), the same
    for every model of the task (as the authors' fixed seed is)."""
    other = int(np.random.default_rng(view.seed(f"{view.task_name}/{name}/shared")).integers(1, 2**31 - 1))
    return int(seed) if view.repeat == 0 else other


def _kv_score(view: ModelView, name: str, layer, per_class, seed, eps: float | None) -> float:
    """- median margin / gamma (module docstring); ``eps`` None: ``kv_margin``, else ``kv_gn_margin``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise MeasureError(f"model {view.model_id}: seed must be an integer in [0, 2**32), got {seed!r}")
    hidden = representation_layer(view, layer)
    labels = torch.as_tensor(view.y_train).detach().cpu().numpy().astype(np.int64)
    try:
        sample, orders = authors_draws(labels, per_class, _repeat_seed(view, name, seed))
    except ValueError as exc:
        raise MeasureError(f"model {view.model_id}: {exc}") from None
    weights = np.bincount(labels, minlength=len(orders)) / len(labels)
    margins = np.empty(len(sample))
    norms = np.empty(len(sample))
    gamma = 0.0

    def head(h):
        return view.forward(h, after=hidden, grad=True, batch_size=len(h))

    for c, order in enumerate(orders):
        if weights[c] == 0:
            continue
        if len(order) < 2:
            raise MeasureError(f"model {view.model_id}: class {c} has {len(order)} image(s) among the {len(sample)} "
                               f"sampled; its k-variance needs at least 2 (per_class={per_class})")
        x = view.x_train[torch.as_tensor(sample[order])]
        h = view.forward(x, hidden, batch_size=len(x))
        margins[order], norms[order] = margins_and_gradient_norms(head, h, labels[sample[order]])
        kv = half_split_w1(h)
        gamma += weights[c] * kv * (1.0 if eps is not None else float(norms[order].max()))
    used = BATCH * (len(sample) // BATCH)
    if used == 0:
        raise MeasureError(f"model {view.model_id}: the margin needs at least {BATCH} training images, "
                           f"the split has {len(sample)}")
    kept = margins[:used] if eps is None else margins[:used] / (norms[:used] + eps)
    if not gamma > 0:
        raise MeasureError(f"model {view.model_id}: the k-variance normalizer is {float(gamma)} at layer {hidden!r} "
                           "(every class's halves coincide, or the margin's gradient vanishes)")
    return float(-np.median(kept) / gamma)


@measure("kv_margin", source=f"{_SOURCE} (kV-Margin/complexity.py)", sign=1, version="1",
         description="- median output margin / sum_c w_c kV_c L_c at the input of Keras layer 2-5's first "
                     "Conv2D/pooling (k-variance normalized margin; Chuang et al., NeurIPS 2021, their kV-Margin "
                     "code; sign +1)")
def kv_margin(view: ModelView, layer="shallow", per_class=200, seed=0) -> float:
    """- median output margin / sum_c w_c kV_c L_c, k-variance normalized margin at the first layer (sign +1).

    Chuang et al.'s kV-Margin submission (``kV-Margin/complexity.py``, default ``shallow=True``): kV_c the
    W1 between two halves of class c's sampled representations, L_c the largest norm of the gradient
    of the margin's two logits with respect to them, w_c the class's share; see the module docstring.
    Parameters: ``layer`` ("shallow", the default: the input of the first Conv2D/pooling among Keras
    layers 2-5; "deep": among 8, 9, 6, 7, 5, 4, 3, 2; or a Keras layer index whose input is read);
    ``per_class`` (200: the sample holds min(N, 200 C) images); ``seed`` (0, the authors' numpy seed;
    repeats >= 1 draw under other seeds).
    """
    return _kv_score(view, "kv_margin", layer, per_class, seed, None)


@measure("kv_gn_margin", source=f"{_SOURCE} (kV-GN-Margin/complexity.py)", sign=1, version="1",
         description="- median gradient-normalized margin / sum_c w_c kV_c at the input of the first "
                     "Conv2D/pooling of Keras layers 8, 9, 6, 7, 5, 4, 3, 2 (Chuang et al., NeurIPS 2021, their "
                     "kV-GN-Margin code; sign +1)")
def kv_gn_margin(view: ModelView, layer="deep", per_class=200, seed=0, eps=1e-6) -> float:
    """- median gradient-normalized margin / sum_c w_c kV_c, k-variance normalized, at a deep layer (sign +1).

    Chuang et al.'s kV-GN-Margin submission (``kV-GN-Margin/complexity.py``, default ``shallow=False``):
    each margin divided by ``||d(f_y - f_j)/dh||_2 + eps`` (j the runner-up class, h the representation),
    the median of those over sum_c w_c kV_c; see the module docstring. Parameters: ``layer`` ("deep",
    the default: the input of the first Conv2D/pooling among Keras layers 8, 9, 6, 7, 5, 4, 3, 2;
    "shallow": among 2-5; or a Keras layer index whose input is read); ``per_class`` (200);
    ``seed`` (0, the authors' numpy seed); ``eps`` (1e-6, theirs).
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise MeasureError(f"model {view.model_id}: eps must be a number >= 0, got {eps!r}")
    return _kv_score(view, "kv_gn_margin", layer, per_class, seed, float(eps))
