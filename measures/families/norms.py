"""The norms family: norm-based baselines of the competition and of Jiang et al. (ICLR 2020).

The sum of squared weights of the competition's sample submission and the distance from
initialization; Jiang et al.'s ('Fantastic Generalization Measures') parameter count, a
VC-dimension-style bound, products and sums of spectral and Frobenius norms of the weights
(BatchNorm folded into the preceding layer first), and the path norm. The norms themselves are in
``measures.stats.norms``.

Sign convention: every measure here is registered with sign +1 (a larger value predicts a larger
generalization gap), the direction the underlying bounds suggest. Jiang et al. found empirically that
several of them (parameter count, spectral products) correlate the other way on their zoo; the sign
records the theoretical direction, not the empirical one.
"""

from __future__ import annotations

import math

import numpy as np

from ..citations import JIANG_2020
from ..model_view import ModelView
from ..registry import MeasureError, measure
from ..stats.norms import frobenius_norm, path_norm_value, spectral_norm


def _log_norms(view: ModelView, norm) -> list[float]:
    values = [norm(m) for m in view.weight_matrices()]
    if any(v <= 0 for v in values):
        raise MeasureError(f"model {view.model_id}: a weight matrix is all zeros (log of a zero norm)")
    return [math.log(v) for v in values]


def _log_sum_rebalanced(log_norms: list[float]) -> float:
    # log(d * (prod ||W_i||^2)^(1/d)) = log d + (2/d) * sum log ||W_i||
    d = len(log_norms)
    return math.log(d) + 2.0 * sum(log_norms) / d


@measure("log_prod_spectral", source=f"{JIANG_2020} (log-prod-of-spec); Bartlett, Foster & Telgarsky, NeurIPS 2017", sign=1,
         stochastic=False)
def log_prod_spectral(view: ModelView) -> float:
    """log prod_i ||W_i||_2^2 over the BatchNorm-folded weights (larger predicts a larger gap).

    W_i: each Conv2D/Dense weight with a directly following BatchNorm folded in (``fold_batchnorm``);
    a BatchNorm that cannot be folded counts as diag(gamma / sqrt(var + eps)). A convolution's
    ||W||_2 is the spectral norm of its kernel reshaped to the (out, in * kh * kw) matrix, as in
    Jiang et al.'s "spec" measures (not the exact operator norm of the convolution). Biases are not
    included. Computed as 2 * sum_i log ||W_i||_2, so it never overflows.
    """
    return float(2.0 * sum(_log_norms(view, spectral_norm)))


@measure("log_sum_spectral", source=f"{JIANG_2020} (log-sum-of-spec); Neyshabur et al., ICLR 2018", sign=1,
         stochastic=False)
def log_sum_spectral(view: ModelView) -> float:
    """log( d * (prod_i ||W_i||_2^2)^(1/d) ) over the d BatchNorm-folded weights (larger predicts a larger gap).

    Jiang et al.'s sum-of-spec: the sum of squared spectral norms after rebalancing the layers of a
    ReLU network (which leaves the function unchanged) to equal norms, i.e. d times the geometric
    mean of ||W_i||_2^2. Same matrices as ``log_prod_spectral``; computed in log space.
    """
    return float(_log_sum_rebalanced(_log_norms(view, spectral_norm)))


@measure("log_prod_frobenius", source=f"{JIANG_2020} (log-prod-of-fro); Neyshabur, Tomioka & Srebro, COLT 2015", sign=1,
         stochastic=False)
def log_prod_frobenius(view: ModelView) -> float:
    """log prod_i ||W_i||_F^2 over the BatchNorm-folded weights (larger predicts a larger gap).

    Same matrices as ``log_prod_spectral`` (BatchNorm folded, biases excluded); computed as
    2 * sum_i log ||W_i||_F.
    """
    return float(2.0 * sum(_log_norms(view, frobenius_norm)))


@measure("log_sum_frobenius", source=f"{JIANG_2020} (log-sum-of-fro); Neyshabur, Tomioka & Srebro, COLT 2015", sign=1,
         stochastic=False)
def log_sum_frobenius(view: ModelView) -> float:
    """log( d * (prod_i ||W_i||_F^2)^(1/d) ) over the d BatchNorm-folded weights (larger predicts a larger gap).

    Jiang et al.'s sum-of-fro: the sum of squared Frobenius norms after rebalancing the layers to
    equal norms, i.e. d times the geometric mean of ||W_i||_F^2; computed in log space.
    """
    return float(_log_sum_rebalanced(_log_norms(view, frobenius_norm)))


# ---------------------------------------------------------------------------------------------
# Counting


def _parameter_count(network) -> int:
    return int(sum(p.numel() for p in network.parameters() if p.requires_grad))


@measure("parameter_count", source=f"{JIANG_2020} (params)", sign=1, stochastic=False)
def parameter_count(view: ModelView) -> float:
    """Number of trainable parameters (larger predicts a larger gap).

    Every ``requires_grad`` parameter of the network: kernels, biases and BatchNorm gamma/beta;
    BatchNorm moving statistics are buffers and are not counted (Keras' trainable parameters).
    """
    return float(_parameter_count(view.network))


@measure("vc_bound", source=f"{JIANG_2020} (VC-dim); Bartlett, Harvey, Liaw & Mehrabian, JMLR 2019", sign=1,
         stochastic=False)
def vc_bound(view: ModelView) -> float:
    """log(L * W * log W), Bartlett et al.'s VC-dimension bound O(L W log W) up to constants (larger predicts a larger gap).

    W is the number of trainable parameters (``parameter_count``) and L the depth, counted as the
    number of Conv2D/Dense layers. The log keeps the value small; it ranks models exactly as the
    bound itself does. Requires W >= 2.
    """
    w = _parameter_count(view.network)
    depth = len(view.weight_layers())
    if w < 2 or depth < 1:
        raise MeasureError(f"model {view.model_id}: vc_bound needs at least 2 parameters and one weighted layer")
    return float(math.log(depth) + math.log(w) + math.log(math.log(w)))


# ---------------------------------------------------------------------------------------------
# Path norm


@measure("path_norm", source=f"{JIANG_2020} (path-norm); Neyshabur, Tomioka & Srebro, COLT 2015", sign=1,
         stochastic=False)
def path_norm(view: ModelView, include_bias: bool = False) -> float:
    """sum_i f_{w^2}(1)[i]: square every weight, feed an all-ones input, sum the logits (larger predicts a larger gap).

    BatchNorm is folded into its Conv2D/Dense first (a BatchNorm that cannot be folded becomes the
    per-channel scale s^2). For a ReLU network this is the sum over all input-output paths of the
    product of squared weights along the path. With ``include_bias=False`` (default) biases (and the
    folded BatchNorm shifts) are set to zero; with True they are squared too, as if each bias were a
    weight from a constant-1 unit. Every activation is non-negative, so ReLU is the identity; pooling
    layers are kept as they are, as in Jiang et al.'s code: max pooling keeps the largest path sum
    of each window, average pooling averages them. A softmax output activation is dropped. Computed
    on a float64 CPU copy of the network, whatever ``view.device``.
    """
    return path_norm_value(view.network, tuple(view.x_train.shape[1:]), include_bias=include_bias)


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
