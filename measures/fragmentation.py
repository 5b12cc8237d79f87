"""Fragmentation: how often the predicted class changes across planes through same-class training samples.

Reference: Mouton, Rabe, Haasbroek, Theunissen, Potgieter, Davel, "Is network fragmentation a useful
complexity measure?", arXiv 2411.04695, which adapts the triplet-plane method of Somepalli et al.,
"Can Neural Nets Learn the Same Model Twice?", CVPR 2022.

Convention: **sign = +1**. A more fragmented model function (more class regions on the planes) predicts
a LARGER generalization gap.

The method, per triplet (x1, x2, x3) of training samples of one class:

1. ``plane_grid``: the plane through the three points, with orthonormal axes
   a = (x2 - x1)/|x2 - x1| and b = (x3 - x1) minus its component along a, normalized; the anchors sit
   at x1 -> (0, 0), x2 -> (|x2 - x1|, 0), x3 -> (a.(x3 - x1), b.(x3 - x1)). An R x R grid of points
   x1 + u a + v b covers the anchors' bounding box, extended by ``padding`` of its extent on each side.
2. Every grid point is classified by the argmax of the logits (``plane_labels``).
3. ``count_regions``: per predicted class, its 8-connected regions in the R x R label image, summed over
   classes (a constant plane scores 1; k classes in one blob each score k).

The model's value aggregates the triplets (``mean`` or ``median``). ``fragmentation_hidden`` does the
same in the post-activation representation of a hidden layer (plane through the three samples'
representations, grid points classified by the layers after it); ``fragmentation_skips`` is the cheap
1-D variant of Somepalli et al.'s code: class changes along the segment x1 -> x2.

Choices the paper leaves open, exposed as keyword parameters (defaults in brackets):
grid resolution R [24], padding [0.1, as in Somepalli et al.], number of triplets [20, spread evenly
over classes], layer [the middle hidden layer], normalization [off: the paper's raw count], aggregation
[mean]. Somepalli et al. counted with R = 50 and 1000 triplets: 2.5 million forward passes, far beyond
the competition's 300 s per-model budget on a CPU. The cost is R^2 x triplets forward passes.

The defaults were chosen to fit the competition's 300 s per-model budget on one CPU thread for a
PGDL task-1-sized VGG (the seconds are in the generated ``docs/measure_times.json``,
``python -m benchmark.perf.measure_times``). Of the budget-sized choices (R = 32 with 10 triplets
costs about the same), R = 24 with 20 triplets was preferred: one triplet per class leaves the mean
at the mercy of a single plane per class, while a 24 x 24 grid still resolves regions down to ~1/20
of the plane's side. ``layer="all"`` costs about the sum over the hidden layers (7 on that VGG);
lower ``num_triplets`` with it.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .model_view import ModelView
from .registry import MeasureError, measure

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

SOURCE = (
    "Mouton, Rabe, Haasbroek, Theunissen, Potgieter, Davel, 'Is network fragmentation a useful complexity "
    "measure?', arXiv 2411.04695; triplet planes of Somepalli et al., CVPR 2022"
)

# Relative size below which x2 - x1, or the part of x3 - x1 off the line through x1 and x2, counts as zero.
# Float32 inputs carry ~1e-7 relative rounding, so a triplet this close to collinear spans no usable plane.
DEGENERATE_RTOL = 1e-5

Classifier = Callable[[torch.Tensor], torch.Tensor]


# -- argument checks ----------------------------------------------------------------------------


def _int_at_least(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _padding(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"padding must be a finite number >= 0, got {value!r}")
    return float(value)


def _aggregation(value) -> str:
    if value not in ("mean", "median"):
        raise ValueError(f"aggregation must be 'mean' or 'median', got {value!r}")
    return value


def _flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


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
    resolution = _int_at_least("resolution", resolution, 2)
    padding = _padding(padding)
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
    count = _int_at_least("count", count, 1)
    size = _int_at_least("size", size, 1)
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
        # ``python -m benchmark.perf.fragmentation``.
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
    resolution = _int_at_least("resolution", resolution, 2)
    padding = _padding(padding)
    batch_size = _int_at_least("batch_size", batch_size, 1)
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
    normalize = _flag("normalize", normalize)
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
    resolution = _int_at_least("resolution", resolution, 2)
    batch_size = _int_at_least("batch_size", batch_size, 1)
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


# -- measures ---------------------------------------------------------------------------------------

# Every fragmentation variant draws its triplets from this stream of ``view.rng``: input-space and
# hidden-layer values of a model are computed on the same triplets (a paired comparison), and reruns repeat.
_TRIPLET_STREAM = "fragmentation"


def _aggregate(values: np.ndarray, aggregation: str, what: str, view: ModelView) -> float:
    done = values[~np.isnan(values)]
    if len(done) == 0:
        raise MeasureError(
            f"model {view.model_id}: {what}: every triplet is degenerate (duplicate or collinear samples)"
        )
    if len(done) < len(values):
        warnings.warn(f"model {view.model_id}: {what}: skipped {len(values) - len(done)} of {len(values)} "
                      "degenerate triplets (duplicate or collinear samples)", RuntimeWarning, stacklevel=3)
    return float(np.mean(done) if aggregation == "mean" else np.median(done))


def _triplet_inputs(view: ModelView, num_triplets: int) -> torch.Tensor:
    index = same_class_tuples(view.y_train.numpy(), num_triplets, view.rng(_TRIPLET_STREAM), size=3)
    return view.x_train[torch.as_tensor(index)]


def _representations(view: ModelView, layer: str, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    flat = x.reshape(-1, *x.shape[2:])
    out = view.forward(flat, layer, batch_size=batch_size)
    return out.reshape(*x.shape[:2], *out.shape[1:])


def _check(measure_name: str, resolution, batch_size, aggregation, padding=0.0, normalize=False, **counts):
    """Validate a measure's parameters; MeasureError naming the measure and the parameter."""
    try:
        _int_at_least("resolution", resolution, 2)
        _int_at_least("batch_size", batch_size, 1)
        _aggregation(aggregation)
        _padding(padding)
        _flag("normalize", normalize)
        for name, value in counts.items():
            _int_at_least(name, value, 1)
    except (TypeError, ValueError) as exc:
        raise MeasureError(f"measure '{measure_name}': {exc}") from None


@measure("fragmentation", source=SOURCE, sign=1)
def fragmentation(view: ModelView, resolution: int = 24, padding: float = 0.1, num_triplets: int = 20,
                  aggregation: str = "mean", normalize: bool = False, batch_size: int = 64) -> float:
    """Mean class-region count on planes through same-class training triplets, in input space (larger: larger gap).

    Mouton et al., arXiv 2411.04695, with the triplet planes of Somepalli et al. (CVPR 2022): for each
    triplet of training samples of one class, an R x R grid over the plane through them (see
    ``plane_grid``) is classified by the network, and the 8-connected regions of each predicted class
    are counted and summed (``count_regions``); the triplets' counts are aggregated.

    Parameters (choices the paper leaves open):
        resolution: R, grid points per axis [24; Somepalli et al. used 50, too costly for a 300 s budget].
        padding: fraction of the anchors' bounding-box extent added on each side [0.1, Somepalli et al.].
        num_triplets: triplets of the SAME class, spread evenly over classes, drawn with
            ``view.rng("fragmentation")`` so reruns repeat [20: two per class for 10 classes].
        aggregation: "mean" (the paper's) or "median" over triplets [mean].
        normalize: divide each triplet's count by the number of classes present in its plane [False].
        batch_size: grid points per forward pass (speed and memory only) [64: on a task-1 VGG
            64-point batches ran faster than 256-point ones, ``python -m benchmark.perf``].

    Degenerate triplets (duplicate or collinear samples) are skipped with a RuntimeWarning giving their
    count; if all are, MeasureError.
    """
    _check("fragmentation", resolution, batch_size, aggregation, padding, normalize, num_triplets=num_triplets)
    triplets = _triplet_inputs(view, num_triplets)
    values = triplet_fragmentation(view.forward, triplets, resolution, padding, normalize, batch_size)
    return _aggregate(values, aggregation, "fragmentation", view)


@measure("fragmentation_hidden", source=SOURCE, sign=1)
def fragmentation_hidden(view: ModelView, layer="middle", resolution: int = 24, padding: float = 0.1,
                         num_triplets: int = 20, aggregation: str = "mean", normalize: bool = False,
                         batch_size: int = 64) -> float:
    """Fragmentation in a hidden layer's post-activation representation (larger: larger gap).

    Mouton et al., arXiv 2411.04695 (hidden-layer fragmentation): the plane is built through the three
    samples' representations at ``layer`` (``view.forward(x, layer)``), and its grid points are
    classified by the layers after it (``view.forward(h, after=layer)``); counting and aggregation as in ``fragmentation``, on
    the same triplets (the ``"fragmentation"`` stream of ``view.rng``).

    Parameters:
        layer: any ``view.layers`` spec: "middle" (``hidden_layers[len // 2]``), "first", "last",
            "penultimate", an int index into ``view.hidden_layers``, a layer name, or "all": the mean
            over every hidden layer of the per-layer value (costs about the sum of the layers' costs;
            lower ``num_triplets`` with it) ["middle"].
        resolution, padding, num_triplets, aggregation, normalize, batch_size: as in ``fragmentation``.

    Triplets whose representations coincide or are collinear are skipped with a RuntimeWarning; a layer
    where all are (a dead layer maps the samples to one point) raises MeasureError naming it.
    """
    _check("fragmentation_hidden", resolution, batch_size, aggregation, padding, normalize, num_triplets=num_triplets)
    layers = view.layers(layer)
    inputs = _triplet_inputs(view, num_triplets)
    per_layer = []
    for name in layers:
        triplets = _representations(view, name, inputs, batch_size)
        classify = lambda h, name=name: view.forward(h, after=name)
        values = triplet_fragmentation(classify, triplets, resolution, padding, normalize, batch_size)
        per_layer.append(_aggregate(values, aggregation, f"fragmentation_hidden at layer '{name}'", view))
    return float(np.mean(per_layer))


@measure("fragmentation_skips", source=SOURCE + "; 1-D 'skips' count of Somepalli et al.'s code", sign=1)
def fragmentation_skips(view: ModelView, resolution: int = 100, num_pairs: int = 50, aggregation: str = "mean",
                        batch_size: int = 64) -> float:
    """Mean number of class changes along segments between same-class training samples (larger: larger gap).

    The cheap 1-D variant of the triplet-plane method (Somepalli et al., CVPR 2022, their code's "skips";
    Mouton et al., arXiv 2411.04695): along x1 -> x2 sampled at ``resolution`` points, both ends
    included, count consecutive points whose predicted classes differ (``segment_skips``).

    Parameters:
        resolution: points per segment [100].
        num_pairs: pairs of the SAME class, spread evenly over classes, drawn with
            ``view.rng()`` (the stream of "fragmentation_skips") [50: five per class for 10 classes].
        aggregation: "mean" or "median" over pairs [mean].
        batch_size: points per forward pass (speed and memory only) [64, as ``fragmentation``].
    """
    _check("fragmentation_skips", resolution, batch_size, aggregation, num_pairs=num_pairs)
    index = same_class_tuples(view.y_train.numpy(), num_pairs, view.rng(), size=2)
    values = segment_skips(view.forward, view.x_train[torch.as_tensor(index)], resolution, batch_size)
    return float(np.mean(values) if aggregation == "mean" else np.median(values))
