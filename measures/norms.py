"""Norm-based baselines: the competition's sample submission and the distance from initialization."""

from __future__ import annotations

import numpy as np

from .model_view import ModelView
from .registry import MeasureError, measure


def _keras_weights(network) -> list[np.ndarray]:
    if hasattr(network, "get_keras_weights"):
        return network.get_keras_weights()
    return [t.detach().cpu().numpy() for t in network.state_dict().values() if t.is_floating_point()]


@measure(
    "weight_norm",
    source="PGDL starting kit sample submission (Jiang et al., arXiv 2012.07976); "
    "Jiang et al., ICLR 2020, 'Fantastic Generalization Measures', frobenius norm family",
    stochastic=False,
)
def weight_norm(view: ModelView) -> float:
    """Sum over all weight tensors of their squared Frobenius norm (larger predicts a larger gap).

    "All weight tensors" means every array of Keras ``model.get_weights()``: kernels, biases and
    BatchNorm's gamma, beta and moving statistics, exactly as the competition's sample submission
    summed them. Accumulated in float64.
    """
    return float(sum(np.sum(np.square(w, dtype=np.float64)) for w in _keras_weights(view.network)))


@measure(
    "distance_from_init",
    source="Nagarajan & Kolter 2019; Jiang et al., ICLR 2020, 'Fantastic Generalization Measures' (dist. from init.)",
    stochastic=False,
)
def distance_from_init(view: ModelView) -> float:
    """Sum over all weight tensors of the squared Frobenius norm of W - W0 (larger predicts a larger gap).

    W0 are the weights at initialization (``weights_init.hdf5``); the same arrays as ``weight_norm``.
    """
    if view.initial_network is None:
        raise MeasureError(f"model {view.model_id}: distance_from_init needs initial weights (weights_init.hdf5)")
    final = _keras_weights(view.network)
    initial = _keras_weights(view.initial_network)
    return float(
        sum(np.sum(np.square(w.astype(np.float64) - w0.astype(np.float64))) for w, w0 in zip(final, initial))
    )
