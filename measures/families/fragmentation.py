"""Fragmentation: how often the predicted class changes across planes through same-class training samples.

Reference: Mouton, Rabe, Haasbroek, Theunissen, Potgieter, Davel, "Is network fragmentation a useful
complexity measure?", arXiv 2411.04695, which adapts the triplet-plane method of Somepalli et al.,
"Can Neural Nets Learn the Same Model Twice?", CVPR 2022.

Convention: **sign = +1**. A more fragmented model function (more class regions on the planes) predicts
a LARGER generalization gap.

The method (``measures.stats.planes``): per triplet of training samples of one class, the plane
through them is covered by an R x R grid of points (``plane_grid``), every point is classified by the
network, and the 8-connected regions of each predicted class are counted and summed
(``count_regions``).

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
``python -m scripts.perf.measure_times``). Of the budget-sized choices (R = 32 with 10 triplets
costs about the same), R = 24 with 20 triplets was preferred: one triplet per class leaves the mean
at the mercy of a single plane per class, while a 24 x 24 grid still resolves regions down to ~1/20
of the plane's side. ``layer="all"`` costs about the sum over the hidden layers (7 on that VGG);
lower ``num_triplets`` with it.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..checks import finite_at_least, flag, int_at_least, one_of
from ..citations import MOUTON_FRAGMENTATION
from ..model_view import ModelView
from ..registry import MeasureError, measure
from ..stats.planes import same_class_tuples, segment_skips, triplet_fragmentation


# Every fragmentation variant draws its triplets from this stream of ``view.rng``, which is shared by the
# task's models (common random numbers): in a repeat every model, input space and hidden layers alike, is
# measured on the same triplets (paired comparisons), another repeat draws others, and reruns repeat.
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
        int_at_least("resolution", resolution, 2)
        int_at_least("batch_size", batch_size, 1)
        one_of("aggregation", aggregation, ("mean", "median"))
        finite_at_least("padding", padding, 0)
        flag("normalize", normalize)
        for name, value in counts.items():
            int_at_least(name, value, 1)
    except (TypeError, ValueError) as exc:
        raise MeasureError(f"measure '{measure_name}': {exc}") from None


@measure("fragmentation", source=MOUTON_FRAGMENTATION, sign=1, version="2")
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
            ``view.rng("fragmentation")``: the same triplets for every model of the task in a repeat,
            other triplets in another repeat, and reruns repeat [20: two per class for 10 classes].
        aggregation: "mean" (the paper's) or "median" over triplets [mean].
        normalize: divide each triplet's count by the number of classes present in its plane [False].
        batch_size: grid points per forward pass (speed and memory only) [64: on a task-1 VGG
            64-point batches ran faster than 256-point ones, ``python -m scripts.perf``].

    Degenerate triplets (duplicate or collinear samples) are skipped with a RuntimeWarning giving their
    count; if all are, MeasureError.
    """
    _check("fragmentation", resolution, batch_size, aggregation, padding, normalize, num_triplets=num_triplets)
    triplets = _triplet_inputs(view, num_triplets)
    values = triplet_fragmentation(view.forward, triplets, resolution, padding, normalize, batch_size)
    return _aggregate(values, aggregation, "fragmentation", view)


@measure("fragmentation_hidden", source=MOUTON_FRAGMENTATION, sign=1, version="2")
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


@measure("fragmentation_skips", source=MOUTON_FRAGMENTATION + "; 1-D 'skips' count of Somepalli et al.'s code", sign=1,
         version="2")
def fragmentation_skips(view: ModelView, resolution: int = 100, num_pairs: int = 50, aggregation: str = "mean",
                        batch_size: int = 64) -> float:
    """Mean number of class changes along segments between same-class training samples (larger: larger gap).

    The cheap 1-D variant of the triplet-plane method (Somepalli et al., CVPR 2022, their code's "skips";
    Mouton et al., arXiv 2411.04695): along x1 -> x2 sampled at ``resolution`` points, both ends
    included, count consecutive points whose predicted classes differ (``segment_skips``).

    Parameters:
        resolution: points per segment [100].
        num_pairs: pairs of the SAME class, spread evenly over classes, drawn with
            ``view.rng()`` (the stream of "fragmentation_skips", the same pairs for every model of the
            task in a repeat) [50: five per class for 10 classes].
        aggregation: "mean" or "median" over pairs [mean].
        batch_size: points per forward pass (speed and memory only) [64, as ``fragmentation``].
    """
    _check("fragmentation_skips", resolution, batch_size, aggregation, num_pairs=num_pairs)
    index = same_class_tuples(view.y_train.numpy(), num_pairs, view.rng(), size=2)
    values = segment_skips(view.forward, view.x_train[torch.as_tensor(index)], resolution, batch_size)
    return float(np.mean(values) if aggregation == "mean" else np.median(values))
