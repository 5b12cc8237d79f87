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


def fft_spectral_norm(kernel, input_shape) -> float:
    """Largest singular value of the circular 2-D convolution by ``kernel`` on ``input_shape`` = (H, W) inputs.

    ``kernel`` in torch layout (out, in, kh, kw), stride 1. The operator is block-diagonalized by the 2-D
    DFT (Sedghi, Gupta & Long, ICLR 2019): its singular values are those of the (out, in) matrices of
    the kernel's DFT, zero-padded to (H, W), at each of the H * W frequencies. A 2-D (out, in) kernel
    (a dense layer, or a 1x1 convolution) gives ``spectral_norm`` of the matrix. float64.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim == 2:
        return spectral_norm(k)
    if k.ndim != 4:
        raise ValueError(f"fft_spectral_norm needs a (out, in, kh, kw) kernel, got shape {k.shape}")
    transforms = np.fft.fft2(k, s=tuple(int(s) for s in input_shape), axes=(2, 3))  # (out, in, H, W)
    per_frequency = np.moveaxis(transforms, (0, 1), (2, 3))  # (H, W, out, in)
    return float(np.linalg.svd(per_frequency, compute_uv=False).max())


@torch.no_grad()
def squared_parameter_output(network, input_shape) -> float:
    """sum f(1) of a copy of ``network`` with every parameter squared (buffers kept), on an all-ones input.

    Every parameter: kernels, biases and BatchNorm gamma and beta; BatchNorm moving statistics are
    buffers and stay as they are. On a ReLU network whose BatchNorms have been reset to the identity
    statistics this is the path norm with biases counted as weights from a constant-1 unit. A softmax
    output activation is dropped (the sum is over logits). float64 CPU copy.
    """
    net = copy.deepcopy(network).to("cpu", torch.float64).eval()
    for module in net.modules():
        if getattr(module, "activation", None) == "softmax":
            module.activation = "linear"
    for p in net.parameters():
        p.square_()
    device = next(net.parameters()).device if any(True for _ in net.parameters()) else torch.device("cpu")
    return float(net(torch.ones((1,) + tuple(input_shape), dtype=torch.float64, device=device)).sum())


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
