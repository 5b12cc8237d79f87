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

from .model_view import ModelView
from .registry import MeasureError, measure

_JIANG = "Jiang et al., ICLR 2020, 'Fantastic Generalization Measures and Where to Find Them'"

# Layers that leave the value of a tensor unchanged in eval mode (for BatchNorm folding: none).
_WEIGHTED = ("Conv2D", "Dense")


# ---------------------------------------------------------------------------------------------
# BatchNorm folding


def _bn_scale_shift(bn) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as y = x * s + t per channel (float64): s = gamma/sqrt(var+eps), t = beta - mean*s."""
    var = bn.moving_variance.detach().cpu().to(torch.float64)
    mean = bn.moving_mean.detach().cpu().to(torch.float64)
    gamma = bn.gamma.detach().cpu().to(torch.float64) if bn.gamma is not None else torch.ones_like(var)
    beta = bn.beta.detach().cpu().to(torch.float64) if bn.beta is not None else torch.zeros_like(var)
    s = gamma / torch.sqrt(var + bn.epsilon)
    return s, beta - mean * s


def _weight_and_bias(module) -> tuple[torch.Tensor, torch.Tensor]:
    layer = module.conv if type(module).__name__ == "Conv2D" else module.linear
    w = layer.weight.detach().cpu().to(torch.float64).clone()
    b = (layer.bias.detach().cpu().to(torch.float64).clone() if layer.bias is not None
         else torch.zeros(w.shape[0], dtype=torch.float64))
    return w, b


def _plan(network) -> list[tuple[str, str, object, object]]:
    """Walk the children: ('weighted', name, module, bn_or_None), ('bn', name, bn, None), ('other', name, module, None).

    A BatchNormalization is folded into a Conv2D/Dense when it is the very next child and the
    Conv2D/Dense has no built-in non-linear activation (then conv -> BN is one affine map).
    """
    children = list(network.named_children())
    plan = []
    i = 0
    while i < len(children):
        name, module = children[i]
        kind = type(module).__name__
        if kind in _WEIGHTED:
            bn = None
            if (i + 1 < len(children) and type(children[i + 1][1]).__name__ == "BatchNormalization"
                    and getattr(module, "activation", "linear") == "linear"):
                bn = children[i + 1][1]
                i += 1
            plan.append(("weighted", name, module, bn))
        elif kind == "BatchNormalization":
            plan.append(("bn", name, module, None))
        else:
            plan.append(("other", name, module, None))
        i += 1
    return plan


def _folded(module, bn) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of a Conv2D/Dense with the BatchNormalization ``bn`` (or None) folded in."""
    w, b = _weight_and_bias(module)
    if bn is not None:
        s, t = _bn_scale_shift(bn)
        w = w * s.reshape((-1,) + (1,) * (w.dim() - 1))
        b = b * s + t
    return w, b


def fold_batchnorm(network, standalone: bool = False) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(layer name, weight, bias) for each Conv2D/Dense, with a following BatchNormalization folded in.

    Weights are float64 torch tensors in torch layout: Conv2D (out, in, kh, kw), Dense (out, in);
    the bias has shape (out,) (zeros when the layer has none). A BatchNormalization directly after a
    Conv2D/Dense whose own activation is linear is folded exactly (eval mode, moving statistics):
    W' = W * s per output channel and b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps);
    gamma = 1 and beta = 0 when the layer has none. With ``standalone=True`` every BatchNormalization
    that could not be folded is also listed, as (name, diag(s), beta - mean * s).
    """
    out = []
    for what, name, module, bn in _plan(network):
        if what == "weighted":
            out.append((name, *_folded(module, bn)))
        elif what == "bn" and standalone:
            s, t = _bn_scale_shift(module)
            out.append((name, torch.diag(s), t))
    return out


def folded_matrices(network) -> list[np.ndarray]:
    """Folded weights as 2-D float64 matrices: Conv2D kernels reshaped to (out, in * kh * kw)."""
    return [w.reshape(w.shape[0], -1).numpy() for _, w, _ in fold_batchnorm(network, standalone=True)]


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
    mats = folded_matrices(view.network)
    if not mats:
        raise MeasureError(f"model {view.model_id}: network has no Conv2D/Dense weights")
    values = [norm(m) for m in mats]
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
    depth = sum(1 for m in view.network.children() if type(m).__name__ in _WEIGHTED)
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
    net = copy.deepcopy(network).to(torch.float64).eval()
    x = torch.ones((1,) + tuple(input_shape), dtype=torch.float64)
    for what, _, module, bn in _plan(net):
        if getattr(module, "activation", None) == "softmax":
            module.activation = "linear"  # the path norm sums the logits, not probabilities
        if what == "weighted":
            w, b = _folded(module, bn)
            layer = module.conv if type(module).__name__ == "Conv2D" else module.linear
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
            s, t = _bn_scale_shift(module)
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
    of each window, average pooling averages them. A softmax output activation is dropped.
    """
    return path_norm_value(view.network, tuple(view.x_train.shape[1:]), include_bias=include_bias)
