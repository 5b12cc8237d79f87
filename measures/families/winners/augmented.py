"""The PGDL winners' measures built on augmented inputs, as their authors' code computes them.

Margin family (sign +1). Natekar & Sharma, "Representation Based Complexity Measures for Predicting
Generalization in Deep Learning", arXiv 2012.02775 (PGDL winners); code: github.com/parthnatekar/pgdl,
``computecomplexityfinal.py`` (``CustomComplexityFinal.computeMargins``, ``distancefromMargin``,
``batchMixupLabelwiseLinear``), ``complexitymeasures.py`` (``complexityMargin``) and ``augment.py``
(``DataAugmentor``). ``complexity(model, dataset, program_dir, measure='Margin', augment=A)`` with A =
None, 'mixup', 'standard' gives ``conv_margin``, ``mixup_margin``, ``augment_margin``:

* Samples: ``n`` = 500 draws of ``dataset.repeat(-1).shuffle(5000, seed=1)`` (``tf_random.shuffle_draws``,
  TensorFlow's own draws, ``margin_seeds``), in
  batches of ``batch_size`` = 50.
* Layer: h = the output of the first layer with ``filters`` or ``units`` (``first_weighted_layer``).
* Per sample, with p = softmax(z), z the logits: when argmax p is the label y, i = y and j = the
  runner-up of p; otherwise i = y and j = argmax p (ties: the lower class). margin = (z_i - z_j) /
  (||grad_h z_i - grad_h z_j||_2 + 1e-7), so a zero gradient gives a huge margin, not a dropped sample.
* Scale: the margins are divided by sqrt(trim_mean(v, 0.05)) + 1e-7, v the per-dimension variances
  (ddof 0) of the flattened h over all measured inputs (the mixed or augmented ones where there are);
  the value is -mean(margins).
* ``mixup_margin``: in each batch, the images of each class are averaged (lambda 0.5) with a uniform
  random permutation of that class's images in the batch (numpy's ``seed(2)`` in every batch), so an
  image may be paired with itself (``mixup_partners``); labels kept.
* ``augment_margin``: each batch goes through ``natekar_augment`` (flip, hue, saturation, brightness,
  contrast, and half the time a zoom crop resized back). The authors reseed TensorFlow with 0 before
  every batch and give every random op the seed 0, so all of an image's draws share one uniform u
  (flip when u < 0.5; hue delta 0.1 u - 0.05; saturation 0.6 + 0.6 u; brightness 0.1 u - 0.05;
  contrast 0.7 + 0.3 u; zoom when u >= 0.5) and every batch repeats the same sequence of u. The port
  computes TensorFlow's u and zoom scales (``natekar_draws``) and applies them position by position
  to every batch. On 1-channel images hue and saturation are the identity (a grey pixel has no hue
  and no saturation; TensorFlow's ``random_hue`` refuses 1 channel, so the authors' code needs a shim
  there, see docs/fidelity.md).

Robustness to augmentations (``augment_robustness``). Aithal K, Kashyap & Subramanyam, "Robustness to
Augmentations as a Generalization metric", arXiv 2101.06459 (PGDL 2nd place); code:
github.com/sumukhaithal6/pgdl, ``runner_up_solution/complexity.py``. The first ``n`` = 64 x 201
training images in stored order (all of them when fewer), in batches of 64; p = softmax of the logits.
For each image and augmentation a: |max p(x) - max p(a(x))| when the predicted class holds, else a's
penalty; the value is minus the sum over images and augmentations (the authors' sign: larger = more
robust, predicting a smaller gap, so ``sign`` = -1). Augmentations and penalties:

===  ===============================================================================  =======
a    horizontal flip                                                                   6
b    saturation x U(0.6, 1.6), one factor per batch (``saturate``)                     1
c    central 90% crop (``tf.image.central_crop``) padded-resized back (``crop_resize``)  2
d    Sobel x-derivative / 4 + 0.5 (``sobel_dx``)                                       3
e    brightness + 0.5                                                                  1
f    flip, then saturation x U(0.6, 1.6)                                               12
g    a random rectangle erased to 0 (``random_erase``)                                 2
===  ===============================================================================  =======

Saturation is TensorFlow's HSV one (``adjust_saturation``); on 1 channel the authors go through
``grayscale_to_rgb`` and ``rgb_to_grayscale``, which multiplies by 0.2989 + 0.5870 + 0.1140.

The augmentation functions are in ``measures.stats.augmentations``. The margins draw what the authors' fixed seeds draw (TensorFlow's generator reproduced by
``measures.stats.tf_random``, numpy's legacy one for the mixup partners): every model of a task gets the same
samples, partners and augmentations. ``augment_robustness``'s
authors set no seed: it draws what their code draws under the seed 0 (``tf.random.set_seed(0)``,
``np.random.seed(0)``; ``aithal_seed``), again the same for every model of a task.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import scipy.stats
import torch

from ...citations import AITHAL, NATEKAR_CODE, NATEKAR_SHARMA
from ...model_view import ModelView
from ...registry import MeasureError, measure
from ...stats.augmentations import mixup_partners, natekar_augment, natekar_draws, robustness_augmentations
from ...stats.tf_random import eager_op_seeds, eager_uniforms, op_seeds, shuffle_draws
from .pgdl_conventions import authors_seed, resolve_layer

_NATEKAR = f"{NATEKAR_SHARMA} (PGDL winners; {NATEKAR_CODE})"

AITHAL_PENALTIES = (6, 1, 2, 3, 1, 12, 2)


def _dtype(view: ModelView) -> torch.dtype:
    param = next(view.network.parameters(), None)
    return param.dtype if param is not None else torch.float32


def margins_at(view: ModelView, x: torch.Tensor, y: torch.Tensor, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample margins (z_i - z_j) / (||grad_h (z_i - z_j)|| + 1e-7) at ``layer`` and the variances of h.

    One batch: ``x`` is passed whole. Returns (margins float64 (N,), h flattened float64 (N, D)).
    """
    if view.num_classes < 2:
        raise MeasureError(f"model {view.model_id}: a margin needs at least 2 classes")
    h = view.forward(x.to(_dtype(view)), layer, batch_size=len(x)).detach().clone().requires_grad_(True)
    z = view.forward(h, after=layer, grad=True, batch_size=len(h)).reshape(len(h), -1)
    p = torch.softmax(z.detach(), dim=1).to(torch.float64).cpu().numpy()
    top = np.argsort(-p, axis=1, kind="stable")[:, :2]
    labels = y.cpu().numpy().astype(np.int64)
    right = top[:, 0] == labels
    j = torch.as_tensor(np.where(right, top[:, 1], top[:, 0]), device=z.device)
    i = torch.as_tensor(labels, device=z.device)
    with torch.enable_grad():
        diff = z.gather(1, i[:, None]).squeeze(1) - z.gather(1, j[:, None]).squeeze(1)
        (grad,) = torch.autograd.grad(diff.sum(), h)
    norm = grad.reshape(len(h), -1).to(torch.float64).norm(dim=1)
    margins = diff.detach().to(torch.float64) / (norm + 1e-7)
    return margins.cpu().numpy(), h.detach().reshape(len(h), -1).to(torch.float64).cpu().numpy()


def _margin_score(view: ModelView, n: int, layer, batch_size: int, buffer: int, seeds: tuple[int, int],
                  transform=None) -> float:
    """-mean margin / (sqrt(trim_mean(var h, 0.05)) + 1e-7) over ``n`` shuffle draws (dataset ``seeds``) in batches."""
    for name, value in (("n", n), ("batch_size", batch_size), ("buffer", buffer)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise MeasureError(f"model {view.model_id}: {name} must be a positive integer, got {value!r}")
    name = resolve_layer(view, layer)
    index = shuffle_draws(np.arange(view.num_train), n, buffer, *seeds)
    margins, hidden = [], []
    for start in range(0, n, batch_size):
        chunk = torch.as_tensor(index[start : start + batch_size])
        x, y = view.x_train[chunk], view.y_train[chunk]
        if transform is not None:
            x = transform(x, y)
        m, h = margins_at(view, x, y, name)
        margins.append(m)
        hidden.append(h)
    variances = np.var(np.concatenate(hidden), axis=0)
    scale = math.sqrt(float(scipy.stats.trim_mean(variances, 0.05))) + 1e-7
    return float(-np.mean(np.concatenate(margins)) / scale)


def _need_images(view: ModelView, name: str) -> None:
    x = view.x_train
    if x.dim() != 4 or x.shape[-1] < 2 or x.shape[-2] < 2:
        raise MeasureError(f"model {view.model_id}: {name} needs image inputs (N, C, H, W) of at least 2x2 "
                           f"pixels; got inputs of shape {tuple(x.shape)}")
    if name == "augment_margin" and x.shape[1] not in (1, 3):
        raise MeasureError(f"model {view.model_id}: {name} needs 1- or 3-channel images (hue, saturation), "
                           f"got {x.shape[1]} channels")


def margin_seeds(view: ModelView, name: str, global_seed: int | None) -> tuple[int, int]:
    """The shuffle's seeds in ``computeMargins``: ``shuffle(5000, seed=1)`` under TensorFlow's global seed.

    No code on the authors' path to ``conv_margin`` and ``mixup_margin`` sets a global seed (None:
    TensorFlow's default graph seed); ``augment_margin``'s ``DataAugmentor`` sets it to 0, which holds
    when the next model's shuffle is built (for every model but a worker's first). Another op seed in
    repeats >= 1 (``authors_seed``).
    """
    return op_seeds(global_seed, authors_seed(view, name, 1))


@measure("conv_margin", source=f"{_NATEKAR} (complexityMargin, augment=None)", sign=1, version="3")
def conv_margin(view: ModelView, n: int = 500, layer=None, batch_size: int = 50, buffer: int = 5000) -> float:
    """-mean normalized margin (z_i - z_j) / (||grad_h (z_i - z_j)|| + 1e-7) at the first conv layer (larger predicts a larger gap).

    See the module docstring. Parameters: ``n`` shuffle draws (500, as the authors);
    ``layer`` the representation h (None: the first Conv2D/Dense; an index into
    ``view.layer_names`` or a layer name); ``batch_size`` samples per batch (50); ``buffer`` the
    shuffle buffer (5000).
    """
    return _margin_score(view, n, layer, batch_size, buffer, margin_seeds(view, "conv_margin", None))


@measure("mixup_margin", source=f"{_NATEKAR} (complexityMargin, augment='mixup')", sign=1, version="3")
def mixup_margin(view: ModelView, n: int = 500, layer=None, batch_size: int = 50, buffer: int = 5000) -> float:
    """``conv_margin`` on midpoints of each image and a same-class partner of its batch (larger predicts a larger gap).

    Partners: ``mixup_partners(labels, 2)`` in every batch, as the authors' ``np.random.seed(2)`` per
    batch (a within-class permutation; an image may be its own partner). Parameters as ``conv_margin``.
    """
    seed = authors_seed(view, "mixup_margin/partners", 2)

    def mix(x, y):
        partners = torch.as_tensor(mixup_partners(y.cpu().numpy(), seed))
        return 0.5 * (x + x[partners])

    return _margin_score(view, n, layer, batch_size, buffer, margin_seeds(view, "mixup_margin", None), mix)


@measure("augment_margin", source=f"{_NATEKAR} (complexityMargin, augment='standard'; augment.py)", sign=1, version="3")
def augment_margin(view: ModelView, n: int = 500, layer=None, batch_size: int = 50, buffer: int = 5000) -> float:
    """``conv_margin`` on images augmented by ``natekar_augment`` (larger predicts a larger gap).

    Every batch gets the same ``natekar_draws(batch_size)`` (u and zoom indices, position by
    position), as the authors' ``DataAugmentor(seed=0)`` built anew for each batch; the samples are
    drawn with TensorFlow's global seed 0 (``margin_seeds``). Image inputs with 1 or 3 channels only.
    Parameters as ``conv_margin``.
    """
    _need_images(view, "augment_margin")
    u, zoom = natekar_draws(batch_size, authors_seed(view, "augment_margin/augment", 0))

    def augment(x, y):
        return natekar_augment(x, u[: len(x)], zoom[: len(x)])

    return _margin_score(view, n, layer, batch_size, buffer, margin_seeds(view, "augment_margin", 0), augment)


def aithal_seed(view: ModelView) -> int:
    """The seed ``augment_robustness`` draws under in this repeat: 0 in repeat 0, then another per repeat.

    Aithal et al.'s code sets no seed, so each of its runs draws anew; the port draws what it draws
    after ``tf.random.set_seed(0)`` and ``np.random.seed(0)`` (``python -m scripts.perf.fidelity
    --seed 0``), the same for every model of the task.
    """
    return authors_seed(view, "augment_robustness", 0)


@measure("augment_robustness", source=f"{AITHAL} (runner_up_solution/complexity.py)", sign=-1, version="3")
def augment_robustness(view: ModelView, n: int = 64 * 201, penalties: Sequence[float] = AITHAL_PENALTIES,
                       saturation: tuple[float, float] = (0.6, 1.6), crop_fraction: float = 0.9,
                       brightness_delta: float = 0.5, batch_size: int = 64) -> float:
    """Minus the sum over images and 7 augmentations of |dp| when the class holds, else a penalty (larger predicts a smaller gap).

    See the module docstring. Parameters: ``n`` the first training images in stored order (64 x 201
    = 12,864, the authors' 201 batches; all when fewer); ``penalties`` per augmentation (flip,
    saturation, crop, Sobel, brightness, flip + saturation, erasing); ``saturation`` the range of the
    per-batch factor; ``crop_fraction`` kept by the central crop; ``brightness_delta`` added;
    ``batch_size`` images per batch (64: one saturation factor per batch). Image inputs with 1 or 3
    channels only. Random draws as the authors' code makes them under the seed ``aithal_seed``: per
    batch, two eager ``tf.random.uniform`` saturation factors (``eager_uniforms``, consecutive eager
    op seeds of the seed), and the erased boxes from numpy's legacy generator seeded with it
    (``erase_boxes``, image after image).
    """
    for name, value in (("n", n), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise MeasureError(f"model {view.model_id}: {name} must be a positive integer, got {value!r}")
    penalties = tuple(float(p) for p in penalties)
    if len(penalties) != 7:
        raise MeasureError(f"penalties must hold 7 values (one per augmentation), got {len(penalties)}")
    _need_images(view, "augment_robustness")
    if view.x_train.shape[1] not in (1, 3):
        raise MeasureError(f"model {view.model_id}: augment_robustness needs 1- or 3-channel images, "
                           f"got {view.x_train.shape[1]} channels")
    seed = aithal_seed(view)
    starts = range(0, min(n, view.num_train), batch_size)
    factors = eager_uniforms(seed, eager_op_seeds(seed, 2 * len(starts)), *saturation).reshape(-1, 2)
    state = np.random.RandomState(seed)
    dtype = _dtype(view)
    total = 0.0
    for start, pair in zip(starts, factors):
        x = view.x_train[start : min(start + batch_size, n)].to(dtype)
        try:
            augmented = robustness_augmentations(x, (float(pair[0]), float(pair[1])), state, crop_fraction,
                                                 brightness_delta)
        except ValueError as exc:
            raise MeasureError(f"model {view.model_id}: augment_robustness: {exc}") from None
        batches = torch.cat([x, *augmented])
        p = torch.softmax(view.forward(batches).reshape(len(batches), -1).to(torch.float64).cpu(), dim=1)
        p = p.reshape(8, len(x), -1)
        p_max, label = p[0].max(dim=1)
        for penalty, pa in zip(penalties, p[1:]):
            pa_max, pa_label = pa.max(dim=1)
            same = pa_label == label
            total += float((p_max - pa_max).abs()[same].sum()) + penalty * int((~same).sum())
    return -total
