"""Statistics of hidden representations layer by layer, from the activations ``ModelView`` shares.

``layer_statistics(view)`` computes the statistics of ``measures.stats.representations`` for every
hidden layer of a model, so every statistic of every layer shares one forward pass (the BatchNorm
study reads it). ``layer_average`` is how the sparsity and clustering families read their ``layer``
parameter (``view.layers``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import torch

from ..model_view import ModelView
from ..registry import MeasureError
from ..stats.representations import representation_statistics, statistic_names


def layer_statistics(view: ModelView, layers: Iterable[str] | None = None, n: int | None = None,
                     statistics: Iterable[str] | None = None, **options) -> dict[str, dict[str, float]]:
    """{layer: {statistic: value}} for ``layers`` (default: ``view.hidden_layers``), input to output.

    Uses ``view.activations(layer, n)`` (the shared class-stratified sample of ``n`` training
    examples, default ``view.sample_size``) and its labels, so all statistics of all layers share one
    forward pass. ``options`` (reduce, threshold, pool, pca) go to ``representation_statistics``.
    Undefined values (e.g. cluster purity of a layer whose channels are all dead) are NaN.
    """
    names = list(view.hidden_layers if layers is None else ([layers] if isinstance(layers, str) else layers))
    wanted = statistic_names(statistics)
    for name in names:
        view.layer(name)  # MeasureError naming the model for an unknown layer
    labels = view.sample(n)[1]
    return {
        name: representation_statistics(view.activations(name, n), labels, num_classes=view.num_classes,
                                        statistics=wanted, **options)
        for name in names
    }


def layer_average(view: ModelView, measure: str, layer: str | int, n: int | None,
                  statistic: Callable[[torch.Tensor, torch.Tensor], float]) -> float:
    """``statistic(activations, labels)`` of the layer(s) ``view.layers(layer)`` names, averaged over them.

    The ``layer`` and ``n`` parameters of the sparsity and clustering measures:
        layer: "all" (the default there: the mean over ``view.hidden_layers``), or any one layer
            ``view.layers`` accepts: "first", "middle", "last", "penultimate", an index into
            ``view.hidden_layers`` (negative from the end) or a layer name.
        n: size of the class-stratified training sample (default ``view.sample_size``); every measure
            of a model uses the same sample and the same cached activations (one forward pass).

    A statistic that is undefined (NaN) or infinite at any selected layer is a ``MeasureError``
    naming the model and the layer, rather than a silently shorter average.
    """
    names = view.layers(layer)
    labels = view.sample(n)[1]
    values = []
    for name in names:
        try:
            value = float(statistic(view.activations(name, n), labels))
        except ValueError as exc:
            raise MeasureError(f"model {view.model_id}: {measure} at layer '{name}': {exc}") from None
        if not math.isfinite(value):
            raise MeasureError(f"model {view.model_id}: {measure} is undefined at layer '{name}' ({value}); "
                               "see its documentation for when")
        values.append(value)
    return float(np.mean(values))
