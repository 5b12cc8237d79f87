"""Classic complexity baselines of Jiang et al. (ICLR 2020, 'Fantastic Generalization Measures').

Parameter count, a VC-dimension-style bound, products and sums of spectral and Frobenius norms of
the weights (BatchNorm folded into the preceding layer first), and the path norm.

Sign convention: every measure here is registered with sign +1 (a larger value predicts a larger
generalization gap), the direction the underlying bounds suggest. Jiang et al. found empirically that
several of them (parameter count, spectral products) correlate the other way on their zoo; the sign
records the theoretical direction, not the empirical one.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from .batchnorm_folding import batchnorm_scale_shift, fold_batchnorm, folded, plan, affine_layer
from .model_view import ModelView
from .registry import MeasureError, measure

__all__ = ["fold_batchnorm", "frobenius_norm", "path_norm_value", "spectral_norm"]

_JIANG = "Jiang et al., ICLR 2020, 'Fantastic Generalization Measures and Where to Find Them'"

# ---------------------------------------------------------------------------------------------
# Norms


def spectral_norm(matrix) -> float:
    """Largest singular value of a 2-D matrix (exact, by SVD, in float64)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.size == 0:
        return 0.0
    return float(np.linalg.svd(m, compute_uv=False)[0])


def frobenius_norm(matrix) -> float:
    """Square root of the sum of squared entries (float64)."""
    return float(np.sqrt(np.sum(np.square(np.asarray(matrix, dtype=np.float64)))))


def _log_norms(view: ModelView, norm) -> list[float]:
    values = [norm(m) for m in view.weight_matrices()]
    if any(v <= 0 for v in values):
        raise MeasureError(f"model {view.model_id}: a weight matrix is all zeros (log of a zero norm)")
    return [math.log(v) for v in values]


def _log_sum_rebalanced(log_norms: list[float]) -> float:
    # log(d * (prod ||W_i||^2)^(1/d)) = log d + (2/d) * sum log ||W_i||
    d = len(log_norms)
    return math.log(d) + 2.0 * sum(log_norms) / d


@measure("log_prod_spectral", source=f"{_JIANG} (log-prod-of-spec); Bartlett, Foster & Telgarsky, NeurIPS 2017", sign=1,
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


@measure("log_sum_spectral", source=f"{_JIANG} (log-sum-of-spec); Neyshabur et al., ICLR 2018", sign=1,
         stochastic=False)
def log_sum_spectral(view: ModelView) -> float:
    """log( d * (prod_i ||W_i||_2^2)^(1/d) ) over the d BatchNorm-folded weights (larger predicts a larger gap).

    Jiang et al.'s sum-of-spec: the sum of squared spectral norms after rebalancing the layers of a
    ReLU network (which leaves the function unchanged) to equal norms, i.e. d times the geometric
    mean of ||W_i||_2^2. Same matrices as ``log_prod_spectral``; computed in log space.
    """
    return float(_log_sum_rebalanced(_log_norms(view, spectral_norm)))


@measure("log_prod_frobenius", source=f"{_JIANG} (log-prod-of-fro); Neyshabur, Tomioka & Srebro, COLT 2015", sign=1,
         stochastic=False)
def log_prod_frobenius(view: ModelView) -> float:
    """log prod_i ||W_i||_F^2 over the BatchNorm-folded weights (larger predicts a larger gap).

    Same matrices as ``log_prod_spectral`` (BatchNorm folded, biases excluded); computed as
    2 * sum_i log ||W_i||_F.
    """
    return float(2.0 * sum(_log_norms(view, frobenius_norm)))


@measure("log_sum_frobenius", source=f"{_JIANG} (log-sum-of-fro); Neyshabur, Tomioka & Srebro, COLT 2015", sign=1,
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


@measure("parameter_count", source=f"{_JIANG} (params)", sign=1, stochastic=False)
def parameter_count(view: ModelView) -> float:
    """Number of trainable parameters (larger predicts a larger gap).

    Every ``requires_grad`` parameter of the network: kernels, biases and BatchNorm gamma/beta;
    BatchNorm moving statistics are buffers and are not counted (Keras' trainable parameters).
    """
    return float(_parameter_count(view.network))


@measure("vc_bound", source=f"{_JIANG} (VC-dim); Bartlett, Harvey, Liaw & Mehrabian, JMLR 2019", sign=1,
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


@torch.no_grad()
def path_norm_value(network, input_shape, include_bias: bool = False) -> float:
    """sum f_{w^2}(1): the network with every (BatchNorm-folded) weight squared, run on an all-ones input.

    ``input_shape`` excludes the batch axis (C, H, W) or (features,). Runs on a deep copy in float64.
    """
    net = copy.deepcopy(network).to("cpu", torch.float64).eval()  # float64 CPU statistics, on any device
    x = torch.ones((1,) + tuple(input_shape), dtype=torch.float64, device="cpu")
    for what, _, module, bn in plan(net):
        if getattr(module, "activation", None) == "softmax":
            module.activation = "linear"  # the path norm sums the logits, not probabilities
        if what == "weighted":
            w, b = folded(module, bn)
            layer = affine_layer(module)
            layer.weight.data = w.square()
            if layer.bias is not None:
                layer.bias.data = b.square() if include_bias else torch.zeros_like(b)
            elif include_bias and bn is not None:
                # bias created by folding: add it after the layer (per output channel)
                x = module(x)
                shape = (1, -1) + (1,) * (x.dim() - 2)
                x = x + b.square().reshape(shape)
                continue
            x = module(x)
        elif what == "bn":
            s, t = batchnorm_scale_shift(module)
            shape = (1, -1) + (1,) * (x.dim() - 2)
            x = x * s.square().reshape(shape)
            if include_bias:
                x = x + t.square().reshape(shape)
        else:
            x = module(x)
    return float(x.sum())


@measure("path_norm", source=f"{_JIANG} (path-norm); Neyshabur, Tomioka & Srebro, COLT 2015", sign=1,
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
