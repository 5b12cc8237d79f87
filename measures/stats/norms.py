"""Norms of weight matrices and the path norm of a network (Jiang et al., ICLR 2020), on arrays and modules.

Used by the norms family (``measures.families.norms``).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from .batchnorm_folding import affine_layer, batchnorm_scale_shift, folded, plan


def spectral_norm(matrix) -> float:
    """Largest singular value of a 2-D matrix (exact, by SVD, in float64)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.size == 0:
        return 0.0
    return float(np.linalg.svd(m, compute_uv=False)[0])


def frobenius_norm(matrix) -> float:
    """Square root of the sum of squared entries (float64)."""
    return float(np.sqrt(np.sum(np.square(np.asarray(matrix, dtype=np.float64)))))


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
