"""The PGDL winners' measures built on augmented inputs, as their authors' code computes them.

Margin family (sign +1). Natekar & Sharma, "Representation Based Complexity Measures for Predicting
Generalization in Deep Learning", arXiv 2012.02775 (PGDL winners); code: github.com/parthnatekar/pgdl,
``computecomplexityfinal.py`` (``CustomComplexityFinal.computeMargins``, ``distancefromMargin``,
``batchMixupLabelwiseLinear``), ``complexitymeasures.py`` (``complexityMargin``) and ``augment.py``
(``DataAugmentor``). ``complexity(model, dataset, program_dir, measure='Margin', augment=A)`` with A =
None, 'mixup', 'standard' gives ``conv_margin``, ``mixup_margin``, ``augment_margin``:

* Samples: ``n`` = 500 draws of ``dataset.repeat(-1).shuffle(5000, seed=1)`` (``shuffle_buffer_draws``,
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

All augmentation functions are public, deterministic given their parameters, and work on float NCHW
tensors. The margins draw what the authors' fixed seeds draw (TensorFlow's generator reproduced by
``tf_random``, numpy's legacy one for the mixup partners): every model of a task gets the same
samples, partners and augmentations. ``augment_robustness``'s
authors set no seed: it draws from ``view.rng("augment_robustness")``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F

from .model_view import ModelView
from .pgdl_conventions import authors_seed, resolve_layer, shuffle_buffer_draws
from .tf_random import op_seeds, stateful_uniform, uint32_to_float
from .registry import MeasureError, measure

_NATEKAR = ("Natekar & Sharma, 'Representation Based Complexity Measures for Predicting Generalization "
            "in Deep Learning', arXiv 2012.02775 (PGDL winners; github.com/parthnatekar/pgdl)")
_AITHAL = ("Aithal K, Kashyap & Subramanyam, 'Robustness to Augmentations as a Generalization metric', "
           "arXiv 2101.06459 (PGDL 2nd place; github.com/sumukhaithal6/pgdl)")

AITHAL_PENALTIES = (6, 1, 2, 3, 1, 12, 2)
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # tf.image.rgb_to_grayscale
ZOOM_SCALES = tuple(np.arange(0.85, 1.0, 0.01))  # the authors' 16 crop scales, 0.85 ... 1.0


# ---------------------------------------------------------------------------------------------
# Colour: TensorFlow's HSV conversions (adjust_hue / adjust_saturation kernels), NCHW with C = 3


def _per_image(value, x: torch.Tensor, dims: int = 3) -> torch.Tensor:
    """A scalar, or an (N,) sequence as an (N, 1, ...) tensor of ``dims`` dimensions, of x's dtype."""
    t = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=x.dtype, device=x.device)
    return t.reshape(-1, *([1] * (dims - 1))) if t.dim() else t


def rgb_to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(h, s, v), each (N, H, W), of NCHW RGB images, as TensorFlow's kernel: s = 0 where v <= 0, h in [0, 1)."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    v = torch.maximum(r, torch.maximum(g, b))
    spread = v - torch.minimum(r, torch.minimum(g, b))
    s = torch.where(v > 0, spread / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    norm = 1.0 / (6.0 * torch.where(spread > 0, spread, torch.ones_like(spread)))
    h = torch.where(r == v, norm * (g - b), torch.where(g == v, norm * (b - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0))
    h = torch.where(spread > 0, h, torch.zeros_like(h))
    return torch.where(h < 0, h + 1, h), s, v


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """NCHW RGB images from (h, s, v), as TensorFlow's kernel (hue sector floor(6 h), chroma s v)."""
    c = s * v
    m = v - c
    dh = h * 6
    sector = dh.floor()
    x = c * (1 - (torch.remainder(dh, 2.0) - 1).abs())
    zero = torch.zeros_like(c)
    table = [(c, x, zero), (x, c, zero), (zero, c, x), (zero, x, c), (x, zero, c), (c, zero, x)]
    out = [zero.clone(), zero.clone(), zero.clone()]
    for k, channels in enumerate(table):
        hit = sector == k
        for i in range(3):
            out[i] = torch.where(hit, channels[i], out[i])
    return torch.stack([o + m for o in out], dim=1)


def _need_rgb_or_grey(x: torch.Tensor) -> None:
    if x.shape[1] not in (1, 3):
        raise ValueError(f"colour augmentations need 1 or 3 channels, got {x.shape[1]}")


def adjust_hue(x: torch.Tensor, delta) -> torch.Tensor:
    """Hue rotated by ``delta`` (a fraction of the circle, per image); the identity on 1 channel (grey)."""
    _need_rgb_or_grey(x)
    if x.shape[1] == 1:
        return x
    h, s, v = rgb_to_hsv(x)
    return hsv_to_rgb(torch.remainder(h + _per_image(delta, x), 1.0), s, v)


def adjust_saturation(x: torch.Tensor, factor) -> torch.Tensor:
    """HSV saturation x ``factor`` (per image), clipped to [0, 1]; the identity on 1 channel (grey)."""
    _need_rgb_or_grey(x)
    if x.shape[1] == 1:
        return x
    h, s, v = rgb_to_hsv(x)
    return hsv_to_rgb(h, (s * _per_image(factor, x)).clamp(0.0, 1.0), v)


def adjust_contrast(x: torch.Tensor, factor) -> torch.Tensor:
    """(x - m) * factor + m, m each image's per-channel mean over pixels (``tf.image.adjust_contrast``)."""
    m = x.mean(dim=(2, 3), keepdim=True)
    return (x - m) * _per_image(factor, x, 4) + m


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror NCHW images left to right."""
    return x.flip(-1)


# ---------------------------------------------------------------------------------------------
# Geometry


def crop_and_resize(x: torch.Tensor, scale) -> torch.Tensor:
    """``tf.image.crop_and_resize`` of the central box of side ``scale`` (per image, in (0, 1]) to H x W, bilinear.

    Output row y samples input row (0.5 - 0.5 s)(H - 1) + y s (H - 1) / (H - 1) (same for columns),
    interpolated between its floor and ceil, as TensorFlow's kernel.
    """
    n, _, h, w = x.shape
    s = torch.as_tensor(np.asarray(scale, dtype=np.float32), dtype=x.dtype, device=x.device).reshape(-1, 1).expand(n, 1)

    def axis(size):
        lo = 0.5 - 0.5 * s
        step = (s * (size - 1) / (size - 1)) if size > 1 else torch.zeros_like(s)
        pos = lo * (size - 1) + torch.arange(size, dtype=x.dtype, device=x.device)[None, :] * step  # (N, size)
        top = pos.floor().long().clamp(0, size - 1)
        return top, pos.ceil().long().clamp(0, size - 1), pos - pos.floor()

    ty, by, ly = axis(h)
    tx, bx, lx = axis(w)
    batch = torch.arange(n, device=x.device)[:, None, None]

    def at(rows, cols):  # (N, C, H, W) samples x[i, :, rows[i, y], cols[i, x]]
        return x[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)

    top = at(ty, tx) + (at(ty, bx) - at(ty, tx)) * lx[:, None, None, :]
    bottom = at(by, tx) + (at(by, bx) - at(by, tx)) * lx[:, None, None, :]
    return top + (bottom - top) * ly[:, None, :, None]


def central_crop(x: torch.Tensor, fraction: float = 0.9) -> torch.Tensor:
    """``tf.image.central_crop``: start = int((side - side * fraction) / 2), size = side - 2 start, per axis."""
    if not 0 < fraction <= 1:
        raise ValueError(f"crop fraction must be in (0, 1], got {fraction}")
    h, w = x.shape[-2:]
    top, left = int((h - h * fraction) / 2), int((w - w * fraction) / 2)
    return x[..., top : h - top, left : w - left]


def resize_with_pad(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``tf.image.resize_with_pad``: bilinear resize keeping the aspect ratio, then zero padding (float32 sizes)."""
    h, w = x.shape[-2:]
    f32 = np.float32
    ratio = max(f32(w) / f32(width), f32(h) / f32(height))
    new_h, new_w = int(np.floor(f32(h) / ratio)), int(np.floor(f32(w) / ratio))
    pad_top = max(0, int(np.floor((f32(height) - f32(h) / ratio) / f32(2))))
    pad_left = max(0, int(np.floor((f32(width) - f32(w) / ratio) / f32(2))))
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    return F.pad(x, (pad_left, width - new_w - pad_left, pad_top, height - new_h - pad_top))


def crop_resize(x: torch.Tensor, fraction: float = 0.9) -> torch.Tensor:
    """Aithal et al.'s augmentation c: ``resize_with_pad(central_crop(x, fraction), H, W)``."""
    return resize_with_pad(central_crop(x, fraction), *x.shape[-2:])


def sobel_dx(x: torch.Tensor) -> torch.Tensor:
    """The x-derivative of ``tf.image.sobel_edges`` per channel (kernel [[-1,0,1],[-2,0,2],[-1,0,1]], reflect padding)."""
    if x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ValueError(f"Sobel edges need images of at least 2x2 pixels, got {tuple(x.shape[-2:])}")
    c = x.shape[1]
    kernel = torch.outer(torch.tensor([1.0, 2.0, 1.0], device=x.device),
                         torch.tensor([-1.0, 0.0, 1.0], device=x.device)).to(x.dtype)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(padded, kernel.expand(c, 1, 3, 3), groups=c)


def erase_boxes(shape, rng: np.random.Generator, sl: float = 0.02, sh: float = 0.4, r1: float = 0.3) -> np.ndarray:
    """(N, 4) boxes (top, left, height, width) of Aithal et al.'s ``random_erase_np_v2``.

    low = round(sqrt(sl A r1)), up = round(sqrt(sh A / r1)) (A = H W, numpy rounding); height ~
    U{low .. min(up, H) - 1}, width ~ U{low .. min(up, W) - 1}, top ~ U{0 .. H - height - 1},
    left ~ U{0 .. W - width - 1}. Drawn in this order, all heights first.
    """
    n, h, w = shape[0], shape[-2], shape[-1]
    area = h * w
    low = int(np.round(np.sqrt(sl * area * r1)))
    up = int(np.round(np.sqrt(sh * area / r1)))
    h_up, w_up = min(up, h), min(up, w)
    if not (low < h_up and low < w_up):
        raise ValueError(f"random erasing needs images larger than {h}x{w}")
    height = rng.integers(low, h_up, size=n)
    width = rng.integers(low, w_up, size=n)
    top = rng.integers(0, h - height)
    left = rng.integers(0, w - width)
    return np.stack([top, left, height, width], axis=1)


def erase(x: torch.Tensor, boxes) -> torch.Tensor:
    """Zero, in every channel, box (top, left, height, width) of each image."""
    boxes = torch.as_tensor(np.asarray(boxes, dtype=np.int64)).to(x.device)
    rows = torch.arange(x.shape[-2], device=x.device)[None, :, None]
    cols = torch.arange(x.shape[-1], device=x.device)[None, None, :]
    t, lft, hh, ww = (boxes[:, i, None, None] for i in range(4))
    inside = (rows >= t) & (rows < t + hh) & (cols >= lft) & (cols < lft + ww)
    return x.masked_fill(inside[:, None], 0.0)


def saturate(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Aithal et al.'s saturation: HSV x ``factor`` on 3 channels; grey images times 0.2989 + 0.5870 + 0.1140."""
    _need_rgb_or_grey(x)
    if x.shape[1] == 3:
        return adjust_saturation(x, factor)
    return x * GREY_WEIGHTS[0] + x * GREY_WEIGHTS[1] + x * GREY_WEIGHTS[2]  # grayscale_to_rgb -> rgb_to_grayscale


# ---------------------------------------------------------------------------------------------
# Natekar & Sharma's augmentation and mixup


def _tf_uniform(u, low: float, high: float) -> np.ndarray:
    """``tf.random.uniform``'s value in [low, high) for its [0, 1) float32 draw ``u``: u (high - low) + low in float32."""
    f = np.float32
    return np.asarray(u, dtype=f) * (f(high) - f(low)) + f(low)


def natekar_augment(x: torch.Tensor, u, zoom_index) -> torch.Tensor:
    """``DataAugmentor.augment`` with every random op of image i reading the uniform ``u[i]``.

    flip (u < 0.5), hue + U(-0.05, 0.05), saturation x U(0.6, 1.2), brightness + U(-0.05, 0.05),
    contrast x U(0.7, 1.0), each the float32 ``u (high - low) + low``, then, when u >= 0.5,
    ``crop_and_resize`` at ``ZOOM_SCALES[zoom_index[i]]``.
    """
    u = np.asarray(u, dtype=np.float32)
    flip = torch.as_tensor(u < 0.5, device=x.device)[:, None, None, None]
    x = torch.where(flip, hflip(x), x)
    x = adjust_hue(x, _tf_uniform(u, -0.05, 0.05))
    x = adjust_saturation(x, _tf_uniform(u, 0.6, 1.2))
    x = x + _per_image(_tf_uniform(u, -0.05, 0.05), x, 4)
    x = adjust_contrast(x, _tf_uniform(u, 0.7, 1.0))
    zoom = u >= 0.5
    if zoom.any():
        scales = np.asarray(ZOOM_SCALES)[np.asarray(zoom_index)]
        zoomed = crop_and_resize(x, scales)
        x = torch.where(torch.as_tensor(zoom, device=x.device)[:, None, None, None], zoomed, x)
    return x


def natekar_draws(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The uniforms u (float32) and zoom indices of ``DataAugmentor(seed=seed).augment`` on a batch of ``count``.

    ``DataAugmentor`` sets TensorFlow's global seed to ``seed`` and gives every random op the seed
    ``seed`` too, so all its stateful ops share one Philox stream (``op_seeds(seed, seed)``), and the
    dataset's map runs each op once per image: image k's flip, hue, saturation, brightness, contrast
    and zoom choice all read the op's k-th draw, u_k. The crop's scale index (an int32 in [0, 16)) is
    drawn only for the images that are zoomed (u >= 0.5): the j-th zoomed image gets the j-th draw's
    32 bits mod 16.
    """
    bits = stateful_uniform(*op_seeds(seed, seed), np.arange(count))[:, 0]
    u = uint32_to_float(bits)
    zoomed = u >= 0.5
    earlier = np.cumsum(zoomed) - zoomed  # zoomed images before each one
    return u, (bits[earlier] % len(ZOOM_SCALES)).astype(np.int64)


def mixup_partners(labels, seed: int = 2) -> np.ndarray:
    """For each sample of a batch, its partner in ``batchMixupLabelwiseLinear(batch, seed)`` (itself possible).

    As the authors: ``np.random.seed(seed)``; the batch sorted by its int32 labels (``np.argsort``,
    numpy's default sort); then for each class 0 .. max label in turn, its block of the sorted batch
    permuted by ``np.random.choice(block, replace=False, size=len(block))``, i.e. legacy
    ``RandomState.permutation``. Sorted position p is paired with sorted position perm(p).
    """
    labels = np.asarray(labels).astype(np.int32)
    order = np.argsort(labels)
    counts = np.bincount(labels[order]) if len(labels) else np.zeros(0, dtype=np.int64)
    edges = np.concatenate([[0], np.cumsum(counts)])
    state = np.random.RandomState(seed)
    shuffled = np.arange(len(labels))
    for a, b in zip(edges[:-1], edges[1:]):
        shuffled[a:b] = a + state.permutation(b - a)
    partners = np.empty(len(labels), dtype=np.int64)
    partners[order] = order[shuffled]
    return partners


# ---------------------------------------------------------------------------------------------
# The margin family


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
    index = shuffle_buffer_draws(np.arange(view.num_train), n, buffer, seeds)
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


# ---------------------------------------------------------------------------------------------
# Robustness to augmentations


def robustness_augmentations(x: torch.Tensor, rng: np.random.Generator, saturation=(0.6, 1.6),
                             crop_fraction: float = 0.9, brightness_delta: float = 0.5) -> list[torch.Tensor]:
    """The 7 augmented versions of one batch ``x`` of ``augment_robustness``, in the order of its penalties.

    Draws: the saturation factor of b, that of f, then ``erase_boxes``.
    """
    lo, hi = saturation
    factor_b, factor_f = rng.uniform(lo, hi), rng.uniform(lo, hi)
    boxes = erase_boxes(x.shape, rng)
    return [
        hflip(x),
        saturate(x, factor_b),
        crop_resize(x, crop_fraction),
        sobel_dx(x) / 4 + 0.5,
        x + brightness_delta,
        saturate(hflip(x), factor_f),
        erase(x, boxes),
    ]


@measure("augment_robustness", source=f"{_AITHAL} (runner_up_solution/complexity.py)", sign=-1, version="2")
def augment_robustness(view: ModelView, n: int = 64 * 201, penalties: Sequence[float] = AITHAL_PENALTIES,
                       saturation: tuple[float, float] = (0.6, 1.6), crop_fraction: float = 0.9,
                       brightness_delta: float = 0.5, batch_size: int = 64) -> float:
    """Minus the sum over images and 7 augmentations of |dp| when the class holds, else a penalty (larger predicts a smaller gap).

    See the module docstring. Parameters: ``n`` the first training images in stored order (64 x 201
    = 12,864, the authors' 201 batches; all when fewer); ``penalties`` per augmentation (flip,
    saturation, crop, Sobel, brightness, flip + saturation, erasing); ``saturation`` the range of the
    per-batch factor; ``crop_fraction`` kept by the central crop; ``brightness_delta`` added;
    ``batch_size`` images per batch (64: one saturation factor per batch). Image inputs with 1 or 3
    channels only. Random draws (saturation factors, erased boxes) from ``view.rng("augment_robustness")``.
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
    rng = view.rng("augment_robustness")
    dtype = _dtype(view)
    total = 0.0
    for start in range(0, min(n, view.num_train), batch_size):
        x = view.x_train[start : min(start + batch_size, n)].to(dtype)
        try:
            augmented = robustness_augmentations(x, rng, saturation, crop_fraction, brightness_delta)
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
