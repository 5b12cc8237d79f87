"""BatchNorm folding: a network's weight layers as affine maps, each with the BatchNorm after it folded in.

Works on the in-house/PGDL layers of ``task_loaders`` (a Conv2D/Dense exposes its torch layer as
``.affine``, a BatchNormalization its eval-mode map as ``.scale_shift()``: no class-name probing);
a plain torch ``Conv2d``/``Linear`` counts as a weight layer too.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def affine_layer(module: nn.Module) -> nn.Conv2d | nn.Linear | None:
    """The torch ``Conv2d``/``Linear`` holding ``module``'s kernel and bias, or None for a layer without one."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return module
    layer = getattr(module, "affine", None)  # task_loaders' Conv2D and Dense
    return layer if isinstance(layer, (nn.Conv2d, nn.Linear)) else None


def batchnorm_scale_shift(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Eval-mode BatchNorm as y = x * s + t per channel (float64, CPU), or None when ``module`` is no BatchNorm."""
    scale_shift = getattr(module, "scale_shift", None)  # task_loaders' BatchNormalization
    return scale_shift() if callable(scale_shift) else None


def weight_and_bias(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of a weight layer as float64 CPU copies (a zero bias when it has none)."""
    layer = affine_layer(module)
    w = layer.weight.detach().cpu().to(torch.float64).clone()
    b = (layer.bias.detach().cpu().to(torch.float64).clone() if layer.bias is not None
         else torch.zeros(w.shape[0], dtype=torch.float64, device="cpu"))
    return w, b


def plan(network: nn.Module) -> list[tuple[str, str, nn.Module, nn.Module | None]]:
    """Walk the children: ('weighted', name, module, bn_or_None), ('bn', name, bn, None), ('other', name, module, None).

    A BatchNorm is folded into a weight layer when it is the very next child and the weight layer
    has no built-in non-linear activation (then conv -> BN is one affine map).
    """
    children = list(network.named_children())
    out = []
    i = 0
    while i < len(children):
        name, module = children[i]
        if affine_layer(module) is not None:
            bn = None
            if (i + 1 < len(children) and batchnorm_scale_shift(children[i + 1][1]) is not None
                    and getattr(module, "activation", "linear") == "linear"):
                bn = children[i + 1][1]
                i += 1
            out.append(("weighted", name, module, bn))
        elif batchnorm_scale_shift(module) is not None:
            out.append(("bn", name, module, None))
        else:
            out.append(("other", name, module, None))
        i += 1
    return out


def folded(module: nn.Module, bn: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of a weight layer with the BatchNorm ``bn`` (or None) folded in."""
    w, b = weight_and_bias(module)
    if bn is not None:
        s, t = batchnorm_scale_shift(bn)
        w = w * s.reshape((-1,) + (1,) * (w.dim() - 1))
        b = b * s + t
    return w, b


def fold_batchnorm(network: nn.Module, standalone: bool = False) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(layer name, weight, bias) for each weight layer, with a following BatchNorm folded in.

    Weights are float64 CPU tensors in torch layout: Conv2D (out, in, kh, kw), Dense (out, in);
    the bias has shape (out,) (zeros when the layer has none). A BatchNorm directly after a weight
    layer whose own activation is linear is folded exactly (eval mode, moving statistics):
    W' = W * s per output channel and b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps);
    gamma = 1 and beta = 0 when the layer has none. With ``standalone=True`` every BatchNorm that
    could not be folded is also listed, as (name, diag(s), beta - mean * s).
    """
    out = []
    for what, name, module, bn in plan(network):
        if what == "weighted":
            out.append((name, *folded(module, bn)))
        elif what == "bn" and standalone:
            s, t = batchnorm_scale_shift(module)
            out.append((name, torch.diag(s), t))
    return out


def _reset_to_identity_statistics(bn: nn.Module) -> None:
    """gamma = 1, beta = 0, moving mean 0, moving variance 1 (the BatchNorm then computes x / sqrt(1 + eps))."""
    for name, value in (("gamma", 1.0), ("beta", 0.0), ("moving_mean", 0.0), ("moving_variance", 1.0)):
        tensor = getattr(bn, name, None)
        if tensor is not None:
            tensor.data.fill_(value)


@torch.no_grad()
def reparametrized(network: nn.Module) -> nn.Module:
    """A deep copy of ``network`` with every foldable BatchNorm folded into its weight layer and reset.

    The reparametrization of Neyshabur et al.'s generalization-bounds code as the robust-evaluation
    reference code (Dziugaite et al., NeurIPS 2020) applies it: each weight layer of ``plan`` gets
    the folded kernel and bias of ``folded`` (a bias is created when the layer has none), and the
    BatchNorm stays in place with gamma = 1, beta = 0, moving mean 0 and moving variance 1, so that it
    still holds parameters (the PAC-Bayes perturbations of the reference perturb them) and computes
    x / sqrt(1 + eps) (a factor 0.9995 for Keras' eps = 1e-3). BatchNorms that cannot be folded are
    kept unchanged. Same device and dtype as ``network``.
    """
    net = copy.deepcopy(network)
    for what, _, module, bn in plan(net):
        if what != "weighted" or bn is None:
            continue
        w, b = folded(module, bn)
        layer = affine_layer(module)
        layer.weight.data = w.to(layer.weight.dtype).to(layer.weight.device)
        bias = b.to(layer.weight.dtype).to(layer.weight.device)
        if layer.bias is None:
            layer.bias = nn.Parameter(bias)
        else:
            layer.bias.data = bias
        _reset_to_identity_statistics(bn)
    return net
