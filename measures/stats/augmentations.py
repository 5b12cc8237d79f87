"""The augmentations of the PGDL winners' code, as TensorFlow computes them, on float NCHW tensors.

Natekar & Sharma's ``DataAugmentor`` (flip, hue, saturation, brightness, contrast, zoom crop:
``natekar_augment``, with TensorFlow's draws ``natekar_draws``) and label-wise mixup partners
(``mixup_partners``); Aithal et al.'s seven augmentations of robustness to augmentations
(``robustness_augmentations``). Every function is public and deterministic given its parameters
(random draws come from the seed or ``rng`` passed in). The measures built on them, and how the
authors' code uses them, are in ``measures.families.winners.augmented``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .tf_random import op_seeds, scale_uniform, stateful_uniform, uint32_to_float

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


def erase_boxes(shape, state: np.random.RandomState, sl: float = 0.02, sh: float = 0.4, r1: float = 0.3) -> np.ndarray:
    """(N, 4) boxes (top, left, height, width) of Aithal et al.'s ``random_erase_np_v2``, from numpy's legacy ``state``.

    low = round(sqrt(sl A r1)), up = round(sqrt(sh A / r1)) (A = H W, numpy rounding). Per image,
    in order, as their loop calls ``np.random.randint``: height ~ U{low .. min(up, H) - 1}, width ~
    U{low .. min(up, W) - 1}, two draws U{0 .. H - height} and U{0 .. W - width} that their code
    overwrites, then top ~ U{0 .. H - height - 1} and left ~ U{0 .. W - width - 1}.
    """
    n, h, w = shape[0], shape[-2], shape[-1]
    area = h * w
    low = int(np.round(np.sqrt(sl * area * r1)))
    up = int(np.round(np.sqrt(sh * area / r1)))
    h_up, w_up = min(up, h), min(up, w)
    if not (low < h_up and low < w_up):
        raise ValueError(f"random erasing needs images larger than {h}x{w}")
    boxes = np.empty((n, 4), dtype=np.int64)
    for i in range(n):
        height, width = state.randint(low, h_up), state.randint(low, w_up)
        state.randint(0, h + 1 - height), state.randint(0, w + 1 - width)
        boxes[i] = state.randint(0, h - height), state.randint(0, w - width), height, width
    return boxes


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


def natekar_augment(x: torch.Tensor, u, zoom_index) -> torch.Tensor:
    """``DataAugmentor.augment`` with every random op of image i reading the uniform ``u[i]``.

    flip (u < 0.5), hue + U(-0.05, 0.05), saturation x U(0.6, 1.2), brightness + U(-0.05, 0.05),
    contrast x U(0.7, 1.0), each the float32 ``u (high - low) + low``, then, when u >= 0.5,
    ``crop_and_resize`` at ``ZOOM_SCALES[zoom_index[i]]``.
    """
    u = np.asarray(u, dtype=np.float32)
    flip = torch.as_tensor(u < 0.5, device=x.device)[:, None, None, None]
    x = torch.where(flip, hflip(x), x)
    x = adjust_hue(x, scale_uniform(u, -0.05, 0.05))
    x = adjust_saturation(x, scale_uniform(u, 0.6, 1.2))
    x = x + _per_image(scale_uniform(u, -0.05, 0.05), x, 4)
    x = adjust_contrast(x, scale_uniform(u, 0.7, 1.0))
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
# Robustness to augmentations


def robustness_augmentations(x: torch.Tensor, factors: tuple[float, float], state: np.random.RandomState,
                             crop_fraction: float = 0.9, brightness_delta: float = 0.5) -> list[torch.Tensor]:
    """The 7 augmented versions of one batch ``x`` of ``augment_robustness``, in the order of its penalties.

    ``factors``: the saturation factors of b and f; ``state``: numpy's legacy generator of ``erase_boxes``.
    """
    factor_b, factor_f = factors
    boxes = erase_boxes(x.shape, state)
    return [
        hflip(x),
        saturate(x, factor_b),
        crop_resize(x, crop_fraction),
        sobel_dx(x) / 4 + 0.5,
        x + brightness_delta,
        saturate(hflip(x), factor_f),
        erase(x, boxes),
    ]
