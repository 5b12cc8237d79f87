"""Measures of the PGDL winners built on augmented inputs: the margin family and robustness to augmentations.

Margin family (sign = +1). Natekar & Sharma, "Representation Based Complexity Measures for Predicting
Generalization in Deep Learning", arXiv 2012.02775 (the PGDL competition's winning team):

* ``conv_margin``: the margin of each training sample at the first hidden representation h, linearized:
  with z = the logits the rest of the network computes from h, i = the true class y and j = the strongest
  class other than y, margin = (z_i - z_j) / ||grad_h z_i - grad_h z_j||_2. j is the runner-up when the
  sample is classified correctly (z_y is the top logit) and the predicted class when it is not, so the
  margin is negative for a misclassified sample (and 0 on a tie). The margins are divided by
  sqrt(trim_mean(v, 0.05)), v the per-dimension variances of the flattened h over the samples measured
  (``numpy.var``, ddof = 0, ``scipy.stats.trim_mean``), averaged over ``n`` = 500 samples of the shared
  stratified sample ``view.sample(n)``, and the score is -mean: smaller margins predict a LARGER gap.
* ``mixup_margin``: the same on inputs first averaged (lambda = 0.5) with a random partner of the same
  class, keeping the label.
* ``augment_margin``: the same on inputs first augmented at random (flip, colour jitter, random crop).

Choices the paper leaves open (ours):

* The gradients are exact, one backward pass per batch of the batch sum of (z_i - z_j) (the network is
  in eval mode, so each sample's logits depend on its own h only). j is chosen on the logits and held
  fixed while differentiating.
* A sample whose gradient norm is exactly 0 (z_i - z_j does not change with h there, e.g. every unit
  downstream is dead) has no defined margin and is left out of the mean; when no sample has one the
  measure fails with ``MeasureError``. So does a representation whose trimmed-mean variance is 0.
* The variances v are those of the representations of the inputs actually measured: the mixed or
  augmented ones for ``mixup_margin`` and ``augment_margin``. They are accumulated batch by batch in
  float64 (Chan et al.'s pairwise update), equal to ``numpy.var`` of the stacked h.
* ``layer`` = None means ``view.hidden_layers[0]``: in PGDL models the first Conv2D's relu output (the
  "conv" of the name); any layer name is accepted.
* Mixup partners: for each sample, uniformly one of the OTHER samples of its class in the measured sample
  (a class with a single sample pairs with itself, leaving it unchanged), from
  ``view.rng("mixup_margin")``.
* Augmentations of ``augment_margin`` (the winners' exact parameters are not in our sources), in this
  order, each independently per sample from ``view.rng("augment_margin")``: horizontal flip with
  probability ``flip_prob`` = 0.5; colour jitter ``jitter``: (x - m) * c + m + b with m the per-image
  mean over all channels and pixels, contrast factor c ~ U[1 - contrast, 1 + contrast] = U[0.9, 1.1] and
  brightness shift b ~ U[-brightness, brightness] = U[-0.1, 0.1], no clipping (PGDL inputs are not all
  in [0, 1]); random crop ``random_crop``: zero-pad each side by ``pad`` = max(1, round(crop_pad * side))
  pixels (crop_pad = 0.1, per axis) and crop back to the original size at a uniform random offset.
  The padding is zeros, applied after the jitter.
* Inputs that are not images (N, C, H, W) with H, W >= 2 cannot be flipped or cropped:
  ``augment_margin`` and ``augment_robustness`` fail with ``MeasureError`` rather than silently measure
  something else. ``conv_margin`` and ``mixup_margin`` work on any input.

Robustness to augmentations (sign = +1). Aithal K, Kanchana, Kanwal & Biswas, "Robustness to Augmentations
as a Generalization metric", arXiv 2101.06459 (2nd place): ``augment_robustness``. Over ``n`` training
samples (default ``view.sample_size``, the shared sample; the paper used up to 12,800) and 7 augmentations
a: for each image x, when argmax p(a(x)) == argmax p(x) (p = softmax of the logits) add
|max p(x) - p(a(x))[argmax p(x)]|, else the augmentation's penalty; score = total / n. A less robust
model predicts a LARGER gap. The augmentations and their penalties, in order:

===  ======================================================  =======
     augmentation (our function)                              penalty
===  ======================================================  =======
a    horizontal flip (``hflip``)                              6
b    saturation x 2 (``saturate``)                            1
c    central 90% crop resized back (``center_crop_resize``)   2
d    Sobel edges (``sobel_edges``)                            3
e    brightness + 0.5 (``brightness``)                        1
f    flip, then saturation x 2                                12
g    cutout of a half-side square (``cutout``)                2
===  ======================================================  =======

Choices (ours where the paper is silent):

* Saturation blends with the per-pixel grey image, grey + s (x - grey), s = ``saturation`` = 2: grey is
  the ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B for 3 channels (as ``tf.image.rgb_to_grayscale``),
  the mean over channels otherwise, so a 1-channel image is unchanged. This is torchvision's
  ``adjust_saturation``, not TensorFlow's HSV-space ``adjust_saturation``; no clipping.
* Central crop: ``tf.image.central_crop``'s rounding, start = int((side - side * fraction) / 2) and size
  = side - 2 * start per axis (exactly centred), then bilinear resizing back
  (``torch.nn.functional.interpolate``, align_corners = False). For sides below 20 a 90% crop removes
  nothing (start 0): the augmentation is the identity there (32 -> 30, 28 -> 26 pixels).
* Sobel edges: per channel sqrt(gx^2 + gy^2), gx and gy the 3x3 Sobel kernels ([1, 2, 1] smoothing,
  [-1, 0, 1] derivative) correlated with the image padded by reflection without repeating the edge pixel
  (``torch`` "reflect", ``scipy.ndimage`` "mirror", TensorFlow "REFLECT", as ``tf.image.sobel_edges``).
* Brightness adds ``brightness_delta`` = 0.5 to every value without clipping (as
  ``tf.image.adjust_brightness``).
* Cutout zeroes, in every channel, a square of side max(1, min(H, W) // 2) lying wholly inside the
  image, its top-left corner uniform over the valid positions, drawn per image from
  ``view.rng("augment_robustness")`` (all n top rows first, then all n left columns).

All the augmentation functions are public and work on float NCHW tensors.

Measured cost at the defaults (1 CPU thread, ``torch.set_num_threads(1)``, the shared 2-core development
machine, torch 2.13 CPU; wall seconds, CPU seconds in brackets) on a PGDL task-1-sized VGG with random
weights and random data, ``build_network(architectures.vgg((32, 32, 3), 10, width=64, depth=3), (32, 32, 3))``
with 2,000 training samples: ``conv_margin`` 10.0 (6.7), ``mixup_margin`` 8.9 (5.9), ``augment_margin``
8.4 (5.7) (500 samples, one forward and one backward pass each), ``augment_robustness`` 61.8 (42.8)
(1,000 samples, 8 forward passes each). All fit the competition's 300 s per-model budget.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F

from .model_view import ModelView
from .registry import MeasureError, measure

_NATEKAR = ("Natekar & Sharma, 'Representation Based Complexity Measures for Predicting Generalization "
            "in Deep Learning', arXiv 2012.02775 (PGDL winners)")
_AITHAL = ("Aithal K, Kanchana, Kanwal & Biswas, 'Robustness to Augmentations as a Generalization metric', "
           "arXiv 2101.06459 (PGDL 2nd place)")

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601
AITHAL_PENALTIES = (6, 1, 2, 3, 1, 12, 2)


# ---------------------------------------------------------------------------------------------
# Augmentations on NCHW tensors


def _per_sample(value, x: torch.Tensor) -> torch.Tensor:
    """A scalar or (N,) sequence as an (N, 1, 1, 1) tensor of x's dtype."""
    t = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=x.dtype, device=x.device)
    return t.reshape(-1, 1, 1, 1) if t.dim() else t


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror NCHW images left to right."""
    return x.flip(-1)


def grey(x: torch.Tensor) -> torch.Tensor:
    """The per-pixel grey level (N, 1, H, W): BT.601 luma for 3 channels, the channel mean otherwise."""
    if x.shape[1] == 3:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    return x.mean(dim=1, keepdim=True)


def saturate(x: torch.Tensor, factor: float = 2.0) -> torch.Tensor:
    """grey + factor * (x - grey), per pixel (identity for one channel); no clipping."""
    g = grey(x)
    return g + factor * (x - g)


def center_crop_resize(x: torch.Tensor, fraction: float = 0.9) -> torch.Tensor:
    """Central crop of ``fraction`` of each side (tf.image.central_crop rounding), resized back bilinearly."""
    if not 0 < fraction <= 1:
        raise ValueError(f"crop fraction must be in (0, 1], got {fraction}")
    h, w = x.shape[-2:]
    top = int((h - h * fraction) / 2)
    left = int((w - w * fraction) / 2)
    if top == 0 and left == 0:
        return x.clone()
    crop = x[..., top : h - top, left : w - left]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)


def sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """Per-channel Sobel gradient magnitude sqrt(gx^2 + gy^2), reflection padding (edge not repeated)."""
    if x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ValueError(f"Sobel edges need images of at least 2x2 pixels, got {tuple(x.shape[-2:])}")
    c = x.shape[1]
    smooth = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    deriv = torch.tensor([-1.0, 0.0, 1.0], dtype=x.dtype, device=x.device)
    kx = torch.outer(smooth, deriv)  # derivative along W
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1).repeat(c, 1, 1, 1)  # (2C, 1, 3, 3): gx, gy per channel
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    g = F.conv2d(padded, kernels, groups=c)
    gx, gy = g[:, 0::2], g[:, 1::2]
    return torch.sqrt(gx * gx + gy * gy)


def brightness(x: torch.Tensor, delta: float = 0.5) -> torch.Tensor:
    """x + delta, no clipping."""
    return x + delta


def cutout(x: torch.Tensor, size: int, top, left) -> torch.Tensor:
    """Zero, in every channel, the ``size`` x ``size`` square at (top[i], left[i]) of image i (inside the image)."""
    n, _, h, w = x.shape
    top = np.broadcast_to(np.asarray(top, dtype=np.int64), (n,)).copy()
    left = np.broadcast_to(np.asarray(left, dtype=np.int64), (n,)).copy()
    if size < 1 or size > min(h, w) or (top < 0).any() or (left < 0).any() \
            or (top + size > h).any() or (left + size > w).any():
        raise ValueError(f"cutout square of side {size} does not fit a {h}x{w} image at the given positions")
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    t = torch.as_tensor(top, device=x.device)[:, None, None]
    lft = torch.as_tensor(left, device=x.device)[:, None, None]
    inside = (rows >= t) & (rows < t + size) & (cols >= lft) & (cols < lft + size)  # (N, H, W)
    return x.masked_fill(inside[:, None], 0.0)


def cutout_size(x: torch.Tensor) -> int:
    """The side of the cutout square: half the shorter image side (at least 1)."""
    return max(1, min(x.shape[-2:]) // 2)


def jitter(x: torch.Tensor, shift, factor) -> torch.Tensor:
    """Colour jitter (x - m) * factor + m + shift, m each image's mean over channels and pixels; no clipping.

    ``shift`` and ``factor`` are scalars or one value per image.
    """
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * _per_sample(factor, x) + m + _per_sample(shift, x)


def pad_crop(x: torch.Tensor, pad: tuple[int, int], top, left) -> torch.Tensor:
    """Zero-pad by ``pad`` = (pad_h, pad_w) on each side, crop each image back to H x W at (top[i], left[i])."""
    n, _, h, w = x.shape
    ph, pw = pad
    top = np.broadcast_to(np.asarray(top, dtype=np.int64), (n,)).copy()
    left = np.broadcast_to(np.asarray(left, dtype=np.int64), (n,)).copy()
    if (top < 0).any() or (top > 2 * ph).any() or (left < 0).any() or (left > 2 * pw).any():
        raise ValueError(f"crop offsets must lie in [0, {2 * ph}] x [0, {2 * pw}]")
    padded = F.pad(x, (pw, pw, ph, ph))
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, top[i] : top[i] + h, left[i] : left[i] + w]
    return out


def crop_padding(x: torch.Tensor, fraction: float = 0.1) -> tuple[int, int]:
    """(pad_h, pad_w) of ``random_crop``: max(1, round(fraction * side)) per axis."""
    h, w = x.shape[-2:]
    return max(1, round(fraction * h)), max(1, round(fraction * w))


def random_crop(x: torch.Tensor, rng: np.random.Generator, fraction: float = 0.1) -> torch.Tensor:
    """Zero-pad by ``crop_padding(x, fraction)`` and crop back to the original size at random offsets."""
    ph, pw = crop_padding(x, fraction)
    top = rng.integers(0, 2 * ph + 1, size=len(x))
    left = rng.integers(0, 2 * pw + 1, size=len(x))
    return pad_crop(x, (ph, pw), top, left)


def random_augment(x: torch.Tensor, rng: np.random.Generator, flip_prob: float = 0.5,
                   brightness: float = 0.1, contrast: float = 0.1, crop_pad: float = 0.1) -> torch.Tensor:
    """``augment_margin``'s augmentation: random flip, then ``jitter``, then ``random_crop``, per image.

    Draws, in this order: n uniforms for the flips, n shifts, n contrast factors, then the crop offsets.
    """
    n = len(x)
    flips = torch.as_tensor(rng.random(n) < flip_prob, device=x.device)
    shift = rng.uniform(-brightness, brightness, size=n)
    factor = rng.uniform(1.0 - contrast, 1.0 + contrast, size=n)
    x = torch.where(flips[:, None, None, None], hflip(x), x)
    x = jitter(x, shift, factor)
    return random_crop(x, rng, crop_pad)


def mixup_partners(labels, rng: np.random.Generator) -> np.ndarray:
    """For each sample, the index of a uniformly drawn other sample of its class (itself when alone).

    Classes are visited in increasing order; each draws one offset per member.
    """
    labels = np.asarray(labels)
    partners = np.arange(len(labels))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = len(members)
        if k > 1:
            offsets = rng.integers(1, k, size=k)
            partners[members] = members[(np.arange(k) + offsets) % k]
    return partners


# ---------------------------------------------------------------------------------------------
# The margin family


def _dtype(view: ModelView) -> torch.dtype:
    param = next(view.network.parameters(), None)
    return param.dtype if param is not None else torch.float32


def _margin_layer(view: ModelView, layer: str | None) -> str:
    if layer is None:
        hidden = view.hidden_layers
        if not hidden:
            raise MeasureError(f"model {view.model_id}: the margin needs a hidden layer; the network has none "
                               f"(layers: {', '.join(view.layer_names)})")
        return hidden[0]
    if layer not in view.layer_names:
        raise MeasureError(f"model {view.model_id}: no layer {layer!r} (layers: {', '.join(view.layer_names)})")
    return layer


class _RunningVariance:
    """Per-dimension mean and variance (ddof = 0) over batches, float64, Chan et al.'s pairwise update."""

    def __init__(self):
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, batch: torch.Tensor) -> None:
        b = batch.detach().reshape(len(batch), -1).to(torch.float64)
        nb = len(b)
        mean_b = b.mean(dim=0)
        m2_b = (b - mean_b).square().sum(dim=0)
        if self.mean is None:
            self.count, self.mean, self.m2 = nb, mean_b, m2_b
            return
        total = self.count + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / total)
        self.m2 = self.m2 + m2_b + delta.square() * (self.count * nb / total)
        self.count = total

    def variance(self) -> np.ndarray:
        return (self.m2 / self.count).cpu().numpy()


def margins_at(view: ModelView, x: torch.Tensor, y: torch.Tensor, layer: str,
               batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Raw per-sample margins (z_y - z_j) / ||grad_h (z_y - z_j)|| at ``layer`` and the variances of h.

    Returns (margins, variances): margins float64 (N,), NaN where the gradient norm is 0;
    variances float64 per dimension of the flattened h (ddof = 0). See the module docstring.
    """
    if view.num_classes < 2:
        raise MeasureError(f"model {view.model_id}: a margin needs at least 2 classes")
    modules = list(view.network.children())
    stop = view.layer_names.index(layer) + 1
    head, tail = modules[:stop], modules[stop:]
    dtype = _dtype(view)
    stats = _RunningVariance()
    out = []
    with torch.inference_mode(False):
        for start in range(0, len(x), batch_size):
            h = x[start : start + batch_size].to(dtype).clone()
            yb = y[start : start + batch_size].clone().long()
            with torch.no_grad():
                for module in head:
                    h = module(h)
            stats.add(h)
            h = h.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                z = h
                for module in tail:
                    z = module(z)
                z = z.reshape(len(h), -1)
                others = z.detach().clone()
                others.scatter_(1, yb[:, None], -math.inf)
                j = others.argmax(dim=1)
                diff = z.gather(1, yb[:, None]).squeeze(1) - z.gather(1, j[:, None]).squeeze(1)
                (grad,) = torch.autograd.grad(diff.sum(), h)
            norm = grad.reshape(len(h), -1).to(torch.float64).norm(dim=1)
            d = diff.detach().to(torch.float64)
            margin = torch.where(norm > 0, d / torch.where(norm > 0, norm, torch.ones_like(norm)),
                                 torch.full_like(d, math.nan))
            out.append(margin)
    return torch.cat(out).cpu().numpy(), stats.variance()


def _normalized_margin_score(view: ModelView, x: torch.Tensor, y: torch.Tensor, layer: str | None,
                             batch_size: int) -> float:
    layer = _margin_layer(view, layer)
    if batch_size < 1:
        raise MeasureError(f"batch_size must be >= 1, got {batch_size}")
    margins, variances = margins_at(view, x, y, layer, batch_size)
    defined = margins[np.isfinite(margins)]
    if defined.size == 0:
        raise MeasureError(f"model {view.model_id}: the gradient of every margin at layer '{layer}' is zero")
    scale = float(scipy.stats.trim_mean(variances, 0.05))
    if not scale > 0:
        raise MeasureError(f"model {view.model_id}: layer '{layer}' does not vary over the samples "
                           f"(trimmed-mean variance {scale}); the normalized margin is undefined")
    return float(-defined.mean() / math.sqrt(scale))


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise MeasureError(f"n must be a positive integer, got {n!r}")


def _need_images(view: ModelView, x: torch.Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[-1] < 2 or x.shape[-2] < 2:
        raise MeasureError(f"model {view.model_id}: {name} needs image inputs (N, C, H, W) of at least 2x2 "
                           f"pixels to flip and crop; got inputs of shape {tuple(x.shape)}")


@measure("conv_margin", source=f"{_NATEKAR} (margin at the first conv layer)", sign=1)
def conv_margin(view: ModelView, n: int = 500, layer: str | None = None, batch_size: int = 256) -> float:
    """-mean normalized margin at the first hidden layer, (z_y - z_j) / ||grad_h (z_y - z_j)|| (larger predicts a larger gap).

    See the module docstring. Parameters: ``n`` samples of the shared stratified sample
    ``view.sample(n)`` (500, as the winners); ``layer`` the representation h (None: the first hidden
    layer, ``view.hidden_layers[0]``; or a layer name); ``batch_size`` samples per forward/backward pass.
    """
    _check_n(n)
    x, y = view.sample(n)
    return _normalized_margin_score(view, x, y, layer, batch_size)


@measure("mixup_margin", source=f"{_NATEKAR} (margin of same-class midpoints)", sign=1)
def mixup_margin(view: ModelView, n: int = 500, layer: str | None = None, batch_size: int = 256) -> float:
    """``conv_margin`` on midpoints (lambda = 0.5) of each sample and a random same-class partner (larger predicts a larger gap).

    Partners come from ``mixup_partners`` with ``view.rng("mixup_margin")``; the mixed input keeps the
    label. Parameters as ``conv_margin``.
    """
    _check_n(n)
    x, y = view.sample(n)
    partners = torch.as_tensor(mixup_partners(y.numpy(), view.rng("mixup_margin")))
    mixed = 0.5 * (x + x[partners])
    return _normalized_margin_score(view, mixed, y, layer, batch_size)


@measure("augment_margin", source=f"{_NATEKAR} (margin of augmented samples; augmentation parameters ours)", sign=1)
def augment_margin(view: ModelView, n: int = 500, layer: str | None = None, batch_size: int = 256,
                   flip_prob: float = 0.5, brightness: float = 0.1, contrast: float = 0.1,
                   crop_pad: float = 0.1) -> float:
    """``conv_margin`` on randomly flipped, colour-jittered and cropped samples (larger predicts a larger gap).

    Augmentation ``random_augment`` with ``view.rng("augment_margin")``: flip with probability
    ``flip_prob``, brightness shift U[-brightness, brightness], contrast factor
    U[1 - contrast, 1 + contrast] around the image mean, zero-padding by ``crop_pad`` of each side
    (at least 1 pixel) and a random crop back. Image inputs only. Other parameters as ``conv_margin``.
    """
    _check_n(n)
    x, y = view.sample(n)
    _need_images(view, x, "augment_margin")
    augmented = random_augment(x, view.rng("augment_margin"), flip_prob, brightness, contrast, crop_pad)
    return _normalized_margin_score(view, augmented, y, layer, batch_size)


# ---------------------------------------------------------------------------------------------
# Robustness to augmentations


def robustness_augmentations(x: torch.Tensor, cutout_top, cutout_left, saturation: float = 2.0,
                             crop_fraction: float = 0.9, brightness_delta: float = 0.5) -> list[torch.Tensor]:
    """The 7 augmented versions of ``x`` of ``augment_robustness``, in the order of its penalties."""
    return [
        hflip(x),
        saturate(x, saturation),
        center_crop_resize(x, crop_fraction),
        sobel_edges(x),
        brightness(x, brightness_delta),
        saturate(hflip(x), saturation),
        cutout(x, cutout_size(x), cutout_top, cutout_left),
    ]


@measure("augment_robustness", source=_AITHAL, sign=1)
def augment_robustness(view: ModelView, n: int | None = None, penalties: Sequence[float] = AITHAL_PENALTIES,
                       saturation: float = 2.0, crop_fraction: float = 0.9, brightness_delta: float = 0.5,
                       batch_size: int = 256) -> float:
    """Mean over samples of the prediction changes under 7 augmentations: |dp| if the class holds, else a penalty (larger predicts a larger gap).

    See the module docstring. Parameters: ``n`` samples of the shared stratified sample (default
    ``view.sample_size``; the paper used up to 12,800), ``penalties`` per augmentation (flip,
    saturation, crop, Sobel, brightness, flip + saturation, cutout; the paper's (6, 1, 2, 3, 1, 12, 2)),
    ``saturation`` factor, ``crop_fraction`` of each side kept by the central crop,
    ``brightness_delta`` added, ``batch_size`` images per forward pass. Image inputs only.
    """
    if n is not None:
        _check_n(n)
    penalties = tuple(float(p) for p in penalties)
    if len(penalties) != 7:
        raise MeasureError(f"penalties must hold 7 values (one per augmentation), got {len(penalties)}")
    if batch_size < 1:
        raise MeasureError(f"batch_size must be >= 1, got {batch_size}")
    x_all, _ = view.sample(n)
    _need_images(view, x_all, "augment_robustness")
    rng = view.rng("augment_robustness")
    side = cutout_size(x_all)
    h, w = x_all.shape[-2:]
    tops = rng.integers(0, h - side + 1, size=len(x_all))
    lefts = rng.integers(0, w - side + 1, size=len(x_all))
    dtype = _dtype(view)
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(x_all), batch_size):
            stop = start + batch_size
            x = x_all[start:stop].to(dtype)
            p = torch.softmax(view.network(x).reshape(len(x), -1).to(torch.float64), dim=1)
            p_max, label = p.max(dim=1)
            augmented = robustness_augmentations(x, tops[start:stop], lefts[start:stop], saturation,
                                                 crop_fraction, brightness_delta)
            for penalty, xa in zip(penalties, augmented):
                pa = torch.softmax(view.network(xa).reshape(len(x), -1).to(torch.float64), dim=1)
                same = pa.argmax(dim=1) == label
                change = (p_max - pa.gather(1, label[:, None]).squeeze(1)).abs()
                total += float(change[same].sum()) + penalty * int((~same).sum())
    return total / len(x_all)
