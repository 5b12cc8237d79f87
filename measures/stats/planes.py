"""Plane geometry of fragmentation: grids on planes through same-class samples, and counting class regions.

After Somepalli et al., "Can Neural Nets Learn the Same Model Twice?", CVPR 2022, as Mouton et al.
(arXiv 2411.04695) use it; the measures are in ``measures.families.fragmentation``. Per triplet
(x1, x2, x3) of training samples of one class:

1. ``plane_grid``: the plane through the three points, with orthonormal axes
   a = (x2 - x1)/|x2 - x1| and b = (x3 - x1) minus its component along a, normalized; the anchors sit
   at x1 -> (0, 0), x2 -> (|x2 - x1|, 0), x3 -> (a.(x3 - x1), b.(x3 - x1)). An R x R grid of points
   x1 + u a + v b covers the anchors' bounding box, extended by ``padding`` of its extent on each side.
2. Every grid point is classified by the argmax of a classifier's logits (``plane_labels``).
3. ``count_regions``: per predicted class, its 8-connected regions in the R x R label image, summed over
   classes (a constant plane scores 1; k classes in one blob each score k).

``segment_skips`` is the 1-D variant of Somepalli et al.'s code (class changes along x1 -> x2). A
classifier is any function from a batch of points to logits (a network, or its layers after one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ..checks import finite_at_least, flag, int_at_least

__all__ = [
    "TripletPlane",
    "count_regions",
    "count_skips",
    "plane_grid",
    "plane_labels",
    "same_class_tuples",
    "segment_skips",
    "triplet_fragmentation",
]


# Relative size below which x2 - x1, or the part of x3 - x1 off the line through x1 and x2, counts as zero.
# Float32 inputs carry ~1e-7 relative rounding, so a triplet this close to collinear spans no usable plane.
DEGENERATE_RTOL = 1e-5

Classifier = Callable[[torch.Tensor], torch.Tensor]


def _tensor(name: str, x) -> torch.Tensor:
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if x.numel() == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} has non-finite values")
    return x


# -- the plane ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TripletPlane:
    """An R x R grid on the plane through a triplet; ``points[i, j] = x1 + u[i] a + v[j] b``.

    Attributes:
        points: (R, R, *x1.shape) grid points, in x1's dtype.
        u, v: (R,) float64 grid coordinates along ``a`` and ``b`` (ascending).
        a, b: orthonormal axes of the plane, shaped like x1.
        anchors: (3, 2) float64 coordinates (u, v) of x1, x2, x3.
    """

    points: torch.Tensor
    u: np.ndarray
    v: np.ndarray
    a: torch.Tensor
    b: torch.Tensor
    anchors: np.ndarray


def _plane_basis(x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor):
    """Flat float64 axes a, b and the (3, 2) anchor coordinates; ValueError for a degenerate triplet."""
    p1, p2, p3 = (x.reshape(-1).double() for x in (x1, x2, x3))
    d = p2 - p1
    length = float(torch.linalg.vector_norm(d))
    scale = max(float(torch.linalg.vector_norm(p1)), float(torch.linalg.vector_norm(p2)), 1e-300)
    if length <= DEGENERATE_RTOL * scale:
        raise ValueError("degenerate triplet: x1 and x2 coincide (duplicate samples), so they span no line")
    a = d / length
    e = p3 - p1
    along = float(a @ e)
    rest = e - along * a
    height = float(torch.linalg.vector_norm(rest))
    if height <= DEGENERATE_RTOL * max(float(torch.linalg.vector_norm(e)), length):
        raise ValueError(
            "degenerate triplet: x3 lies on the line through x1 and x2 (collinear or duplicate samples), "
            "so the three span no plane"
        )
    b = rest / height
    anchors = np.array([[0.0, 0.0], [length, 0.0], [along, height]])
    return a, b, anchors


def _grid_axes(anchors: np.ndarray, resolution: int, padding: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates: the anchors' bounding box, each side pushed out by ``padding`` x its extent."""
    low, high = anchors.min(axis=0), anchors.max(axis=0)
    margin = padding * (high - low)
    u = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    v = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    return u, v


def _points(origin: torch.Tensor, a: torch.Tensor, b: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """origin + u[k] a + v[k] b for each k: (len(u), D), in origin's dtype (one code path for every caller)."""
    return origin + u[:, None] * a + v[:, None] * b


def plane_grid(x1, x2, x3, resolution: int = 24, padding: float = 0.1) -> TripletPlane:
    """The R x R grid on the plane through x1, x2, x3 (Somepalli et al., CVPR 2022; Mouton et al. 2411.04695).

    Parameters:
        x1, x2, x3: three points of the same shape (any shape: an image (C, H, W), a feature vector,
            a hidden representation); they are flattened for the geometry and the grid is reshaped back.
        resolution: R >= 2, grid points per axis.
        padding: >= 0, fraction of the anchors' bounding-box extent added on each side (0.1 = 10%,
            Somepalli et al.'s value).

    Returns:
        TripletPlane with ``points[i, j] = x1 + u[i] a + v[j] b``, where a = (x2 - x1)/|x2 - x1| and b is
        x3 - x1 without its component along a, normalized; the anchors are x1 -> (0, 0),
        x2 -> (|x2 - x1|, 0), x3 -> (a.(x3 - x1), b.(x3 - x1)).

    Raises:
        ValueError: shapes differ, or the triplet is degenerate (x1 == x2, or x3 on the line through
            x1 and x2, within a relative ``DEGENERATE_RTOL``), naming which.
    """
    resolution = int_at_least("resolution", resolution, 2)
    padding = finite_at_least("padding", padding, 0)
    x1, x2, x3 = (_tensor(name, x) for name, x in (("x1", x1), ("x2", x2), ("x3", x3)))
    if not x1.shape == x2.shape == x3.shape:
        raise ValueError(f"x1, x2, x3 must have one shape, got {list(x1.shape)}, {list(x2.shape)}, {list(x3.shape)}")
    a, b, anchors = _plane_basis(x1, x2, x3)
    u, v = _grid_axes(anchors, resolution, padding)
    dtype = x1.dtype
    uu, vv = np.meshgrid(u, v, indexing="ij")
    flat = _points(x1.reshape(-1), a.to(dtype), b.to(dtype), torch.as_tensor(uu.ravel(), dtype=dtype, device=x1.device),
                   torch.as_tensor(vv.ravel(), dtype=dtype, device=x1.device))
    return TripletPlane(
        points=flat.reshape(resolution, resolution, *x1.shape),
        u=u,
        v=v,
        a=a.to(dtype).reshape(x1.shape),
        b=b.to(dtype).reshape(x1.shape),
        anchors=anchors,
    )


# -- counting ---------------------------------------------------------------------------------------


def count_regions(labels_2d, connectivity: int = 8) -> int:
    """Number of connected single-class regions of a label image, summed over its classes.

    Per predicted class, its regions are counted with ``scipy.ndimage.label`` (connectivity 8: a 3 x 3
    structure of ones, so diagonal neighbours join; 4: edge neighbours only). A constant image scores 1;
    k classes each forming one blob score k (Mouton et al., arXiv 2411.04695).

    Parameters:
        labels_2d: 2-D array of integer class labels (any values).
        connectivity: 8 (the paper's) or 4.
    """
    labels = np.asarray(labels_2d)
    if labels.ndim != 2 or labels.size == 0:
        raise ValueError(f"labels_2d must be a non-empty 2-D array, got shape {list(labels.shape)}")
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.bool_)):
        raise ValueError(f"labels_2d must hold integer class labels, got dtype {labels.dtype}")
    if connectivity == 8:
        structure = np.ones((3, 3), dtype=bool)
    elif connectivity == 4:
        structure = ndimage.generate_binary_structure(2, 1)
    else:
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    return int(sum(ndimage.label(labels == c, structure=structure)[1] for c in np.unique(labels)))


def count_skips(labels_1d) -> int:
    """Number of class changes between consecutive entries of a 1-D label sequence (Somepalli et al.)."""
    labels = np.asarray(labels_1d)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels_1d must be a non-empty 1-D array, got shape {list(labels.shape)}")
    return int(np.count_nonzero(labels[1:] != labels[:-1]))


# -- sampling ---------------------------------------------------------------------------------------


def same_class_tuples(labels, count: int, rng: np.random.Generator, size: int = 3) -> np.ndarray:
    """``count`` tuples of ``size`` distinct sample indices sharing a label, spread evenly over classes.

    Every class with at least ``size`` samples gets ``count // C`` tuples, and ``count % C`` classes
    chosen at random get one more (C: the number of such classes). Samples in a tuple are drawn
    without replacement; tuples are drawn independently. Returns an int64 array (count, size),
    grouped by class in ascending label order.
    """
    count = int_at_least("count", count, 1)
    size = int_at_least("size", size, 1)
    labels = np.asarray(labels).reshape(-1)
    classes, sizes = np.unique(labels, return_counts=True)
    usable = classes[sizes >= size]
    if len(usable) == 0:
        raise ValueError(f"no class has {size} training samples to draw a same-class tuple from")
    per_class = np.full(len(usable), count // len(usable))
    per_class[rng.choice(len(usable), count % len(usable), replace=False)] += 1
    tuples = []
    for c, k in zip(usable, per_class):
        members = np.flatnonzero(labels == c)
        tuples.extend(rng.choice(members, size, replace=False) for _ in range(k))
    return np.asarray(tuples, dtype=np.int64).reshape(count, size)


# -- classifying grids ----------------------------------------------------------------------------


def _classify(classify: Classifier, points: torch.Tensor) -> np.ndarray:
    if points.dim() == 4:
        # Same values up to float rounding; faster CPU convolutions (oneDNN prefers NHWC), see
        # ``python -m scripts.perf.fragmentation``.
        points = points.contiguous(memory_format=torch.channels_last)
    logits = classify(points)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or len(logits) != len(points):
        shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"the classifier must map {len(points)} points to ({len(points)}, classes) logits, got {shape}"
        )
    return logits.argmax(dim=1).cpu().numpy()


def _anchors(name: str, anchors, size: int) -> torch.Tensor:
    anchors = _tensor(name, anchors)
    if anchors.dim() < 3 or anchors.shape[1] != size:
        raise ValueError(f"{name} must have shape (count, {size}, *point_shape), got {list(anchors.shape)}")
    return anchors


def plane_labels(classify: Classifier, triplets, resolution: int = 24, padding: float = 0.1,
                 batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class at every grid point of every triplet's plane (see ``plane_grid``).

    Parameters:
        classify: maps a batch of points (N, *point_shape) to logits (N, classes); a network, or
            ``view.forward`` (with ``after=`` a layer for hidden representations). Called under ``torch.inference_mode``.
        triplets: (T, 3, *point_shape) anchors x1, x2, x3 of each plane.
        resolution, padding: as in ``plane_grid``.
        batch_size: grid points per forward pass; the points of consecutive triplets share batches
            and are generated batch by batch, so memory stays at O(batch_size) points.

    Returns:
        (labels, valid): int64 labels (T, R, R), ``labels[t, i, j]`` the argmax at
        ``x1 + u[i] a + v[j] b``; and a bool mask (T,) that is False for degenerate triplets (duplicate
        or collinear anchors), whose labels are -1.
    """
    resolution = int_at_least("resolution", resolution, 2)
    padding = finite_at_least("padding", padding, 0)
    batch_size = int_at_least("batch_size", batch_size, 1)
    triplets = _anchors("triplets", triplets, 3)
    count, shape, dtype = len(triplets), triplets.shape[2:], triplets.dtype
    planes, valid = [], np.zeros(count, dtype=bool)
    for t in range(count):
        try:
            a, b, anchors = _plane_basis(*triplets[t])
        except ValueError:
            continue
        u, v = _grid_axes(anchors, resolution, padding)
        planes.append((triplets[t, 0].reshape(-1), a.to(dtype), b.to(dtype),
                       torch.as_tensor(u, dtype=dtype, device=triplets.device),
                       torch.as_tensor(v, dtype=dtype, device=triplets.device)))
        valid[t] = True

    per_plane = resolution * resolution
    flat = np.empty(len(planes) * per_plane, dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(flat), batch_size):
            stop = min(start + batch_size, len(flat))
            pieces = []
            for p in range(start // per_plane, (stop - 1) // per_plane + 1):
                origin, a, b, u, v = planes[p]
                k = torch.arange(max(start, p * per_plane), min(stop, (p + 1) * per_plane),
                                 device=origin.device) - p * per_plane
                pieces.append(_points(origin, a, b, u[k // resolution], v[k % resolution]))
            flat[start:stop] = _classify(classify, torch.cat(pieces).reshape(-1, *shape))

    labels = np.full((count, resolution, resolution), -1, dtype=np.int64)
    labels[valid] = flat.reshape(-1, resolution, resolution)
    return labels, valid


def triplet_fragmentation(classify: Classifier, triplets, resolution: int = 24, padding: float = 0.1,
                          normalize: bool = False, batch_size: int = 64) -> np.ndarray:
    """Fragmentation of each triplet's plane: 8-connected class regions, summed over classes.

    Mouton et al., arXiv 2411.04695 (triplet planes of Somepalli et al., CVPR 2022). Larger values
    (more fragmented planes) predict a larger generalization gap.

    Parameters:
        classify, triplets, resolution, padding, batch_size: as in ``plane_labels``. For the input
            space pass ``view.forward`` and input triplets; for a hidden layer, ``view.forward`` with
            ``after=`` the layer and the triplets' representations at that layer.
        normalize: divide each count by the number of classes present in its plane (1.0 = every class
            one region); off by default, the paper's raw count.

    Returns:
        float64 array (T,): one value per triplet, NaN for a degenerate triplet (duplicate or collinear
        anchors), which spans no plane.
    """
    normalize = flag("normalize", normalize)
    labels, valid = plane_labels(classify, triplets, resolution, padding, batch_size)
    out = np.full(len(labels), np.nan)
    for t in np.flatnonzero(valid):
        regions = count_regions(labels[t])
        out[t] = regions / len(np.unique(labels[t])) if normalize else regions
    return out


def segment_skips(classify: Classifier, pairs, resolution: int = 100, batch_size: int = 64) -> np.ndarray:
    """Class changes along each segment x1 -> x2, sampled at ``resolution`` evenly spaced points.

    The 1-D variant in Somepalli et al.'s code (CVPR 2022): point k is x1 + k/(R-1) (x2 - x1), both
    ends included. ``pairs`` is (P, 2, *point_shape); returns float64 (P,) counts. Larger values
    predict a larger generalization gap.
    """
    resolution = int_at_least("resolution", resolution, 2)
    batch_size = int_at_least("batch_size", batch_size, 1)
    pairs = _anchors("pairs", pairs, 2)
    shape = pairs.shape[2:]
    steps = torch.linspace(0, 1, resolution, dtype=pairs.dtype, device=pairs.device)
    starts, ends = pairs[:, 0].reshape(len(pairs), -1), pairs[:, 1].reshape(len(pairs), -1)
    total = len(pairs) * resolution
    flat = np.empty(total, dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, total, batch_size):
            k = torch.arange(start, min(start + batch_size, total), device=pairs.device)
            p, s = k // resolution, steps[k % resolution, None]
            points = starts[p] + s * (ends[p] - starts[p])
            flat[start : start + len(k)] = _classify(classify, points.reshape(-1, *shape))
    return np.array([count_skips(row) for row in flat.reshape(len(pairs), resolution)], dtype=np.float64)
