"""PGDL-style architectures as layer lists, with a BatchNorm switch, for the in-house model zoos.

Every function returns a PGDL ``config.json`` ``"model_config"`` list,
``[{"layer_name": CLASS, **kwargs}, ...]``, that :func:`task_loaders.keras_layers.build_network`
(and the official Keras loader) builds into a ``Sequential`` model producing logits.

BatchNorm convention (the same in every family)
-----------------------------------------------
Every hidden weight layer (each conv except a final classifier conv, each hidden Dense) is written
WITHOUT an ``activation`` kwarg and is followed by::

    {"layer_name": "BatchNormalization"}          # only when batchnorm=True
    {"layer_name": "Activation", "activation": "relu"}

so a model and its BatchNorm twin differ ONLY by the BatchNormalization entries
(``strip_batchnorm(f(..., batchnorm=True)) == f(..., batchnorm=False)``), and the post-activation
hidden representations are exactly the outputs of the ``Activation`` layers. Convs and Dense layers
keep ``use_bias=True`` (the Keras default, left implicit) in both variants: the bias before a
BatchNorm is redundant but harmless, and keeping it makes the twin property exact. BatchNormalization
uses the Keras defaults (momentum 0.99, epsilon 1e-3, center and scale). The classifier layer (the
last Dense, or the final 1x1 conv before global average pooling) is linear and never normalized.

All convolutions are 3x3 (or 1x1) with ``padding="same"``; stride-1 convs keep the spatial size,
stride-2 convs give ceil(size / 2). Pooling is ``MaxPooling2D(pool_size=2)`` (stride 2, "valid":
floor(size / 2)). Kernel sizes and strides are written as ints (Keras and the converter accept both).

Families (``H x W`` is the spatial size as the list is built)
-------------------------------------------------------------
``vgg`` (PGDL tasks 1, 8)::

    for i in range(depth):                       # block i: filters width * 2**i
        2 x [Conv2D 3x3 same, (BN), ReLU]
        MaxPooling2D(2)                          # skipped when H < 2 or W < 2
    Flatten
    dense_layers x [Dense(dense_units), (BN), ReLU, (Dropout)]
    Dense(num_classes)

    The last block's width ``width * 2**(depth-1)`` is PGDL's "last-conv filters".
    ``dense_units`` defaults to ``4 * width`` (independent of depth, so the depth axis of a grid does
    not also change the dense width). ``dense_layers`` may be 0 (Flatten straight into the logits).

``nin`` (Network in Network; PGDL tasks 2, 6, 9)::

    for b in range(depth):
        Conv2D 3x3 same (width), (BN), ReLU
        2 x [Conv2D 1x1 (width), (BN), ReLU]
        if b < depth - 1: MaxPooling2D(2), (Dropout)
    Conv2D 1x1 (num_classes), GlobalAveragePooling2D    -> logits

    ``depth`` NiN blocks = ``3 * depth`` hidden convs (PGDL task 2's {6, 9, 12} conv layers are
    depth 2, 3, 4). Lin et al. pooled 3x3 with stride 2; 2x2/2 is used here, as in ``vgg``. With
    ``depth == 1`` there is no pooling, hence no Dropout site: ``dropout`` then has no effect.
    The input must allow ``depth - 1`` poolings (each needs H, W >= 2), else ValueError on ``depth``.

``allconv`` (fully convolutional; PGDL tasks 4, 5)::

    for i in range(1, depth + 1):
        Conv2D 3x3 same (width), stride 2 if i is even else 1, (BN), ReLU, (Dropout)
    Conv2D 1x1 (num_classes), GlobalAveragePooling2D    -> logits

    Constant width (no widening after a stride). Dropout follows every 3x3 conv, so it is present
    at every depth whenever ``dropout > 0``. Each stride-2 conv needs H, W >= 2 at its input (a
    stride-2 conv on a 1-pixel map downsamples nothing), else ValueError on ``depth``.

``cnn4`` (the MNIST CNN of Potgieter, Mouton, Davel, arXiv 2501.14441: four conv layers)::

    [Conv2D 3x3 same (width), (BN), ReLU]
    [Conv2D 3x3 same (width), (BN), ReLU]
    MaxPooling2D(2) (skipped when H < 2 or W < 2), (Dropout)
    [Conv2D 3x3 same (2*width), (BN), ReLU]
    [Conv2D 3x3 same (2*width), (BN), ReLU]
    MaxPooling2D(2) (skipped when H < 2 or W < 2), (Dropout)
    Flatten, Dense(num_classes)

    The paper does not publish padding, widths or dropout placement; "same" padding keeps the
    8x8 digits input usable (8 -> 4 -> 2), and Dropout sits after each pooling stage (Keras' classic
    MNIST CNN placement).

``mlp`` (the double-descent width sweep of Mouton et al., arXiv 2411.04695)::

    Flatten
    depth x [Dense(width), (BN), ReLU, (Dropout)]
    Dense(num_classes)

``vgg16`` (the BatchNorm paper's CIFAR-10 network, Simonyan & Zisserman's configuration D)::

    for blocks of (2, 2, 3, 3, 3) convs with filters width * (1, 2, 4, 8, 8):
        n x [Conv2D 3x3 same, (BN), ReLU]
        MaxPooling2D(2) (skipped when H < 2 or W < 2), (Dropout)
    Flatten, 2 x [Dense(8 * width), (BN), ReLU], Dense(num_classes)

    width 64 is the original (512-unit dense layers here, as in the usual CIFAR-10 adaptations).

Argument checks (ValueError naming the argument): ``input_shape`` is 3 positive ints (H, W, C);
``num_classes``, ``width``, ``depth``, ``dense_units`` (when given) are positive ints;
``dense_layers`` is an int >= 0; ``0 <= dropout < 1``; ``batchnorm`` is a bool.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Callable

import numpy as np

__all__ = ["vgg", "nin", "allconv", "cnn4", "mlp", "vgg16", "ARCHITECTURES", "strip_batchnorm"]


# ---------------------------------------------------------------------------------------------
# Argument checks


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def _input_shape(value) -> tuple[int, int, int]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {value!r}")
    try:
        return tuple(_positive_int("input_shape", v) for v in value)
    except ValueError:
        raise ValueError(f"input_shape must be three positive integers (height, width, channels), got {value!r}") from None


def _dropout(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"dropout must be a number in [0, 1), got {value!r}")
    if not 0 <= value < 1:
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")
    return float(value)


def _batchnorm(value) -> bool:
    # numpy's bool is accepted too (it is not a subclass of bool).
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"batchnorm must be True or False, got {value!r}")


def _common(input_shape, num_classes, dropout, batchnorm):
    return _input_shape(input_shape), _positive_int("num_classes", num_classes), _dropout(dropout), _batchnorm(batchnorm)


# ---------------------------------------------------------------------------------------------
# Layer-entry helpers (fresh dicts every call, so callers may mutate what they get)


def _conv(filters: int, kernel: int, strides: int = 1) -> dict:
    layer = {"layer_name": "Conv2D", "filters": filters, "kernel_size": kernel, "padding": "same"}
    if strides != 1:
        layer["strides"] = strides
    return layer


def _normalized_relu(batchnorm: bool) -> list[dict]:
    """What follows every hidden weight layer: (BatchNormalization,) Activation(relu)."""
    out = [{"layer_name": "BatchNormalization"}] if batchnorm else []
    return out + [{"layer_name": "Activation", "activation": "relu"}]


def _dropout_layer(rate: float) -> list[dict]:
    return [{"layer_name": "Dropout", "rate": rate}] if rate > 0 else []


def _maybe_pool(size: tuple[int, int]) -> tuple[list[dict], tuple[int, int]]:
    """MaxPooling2D(2) unless a side is below 2 (the output would be smaller than 1x1)."""
    h, w = size
    if h < 2 or w < 2:
        return [], size
    return [{"layer_name": "MaxPooling2D", "pool_size": 2}], (h // 2, w // 2)


def _too_deep(family: str, depth: int, shape, needed: int, what: str, allowed: int) -> ValueError:
    return ValueError(
        f"depth={depth} does not fit input_shape {list(shape)}: {family} needs {needed} {what}, "
        f"and a {shape[0]}x{shape[1]} input allows at most {allowed} (each needs a map of at least 2x2)"
    )


def _count_halvings(size: tuple[int, int], ceil: bool) -> int:
    h, w = size
    n = 0
    while h >= 2 and w >= 2:
        h, w = ((-(-h // 2), -(-w // 2)) if ceil else (h // 2, w // 2))
        n += 1
    return n


# ---------------------------------------------------------------------------------------------
# Families


def vgg(input_shape, num_classes, *, width=16, depth=2, dense_layers=1, dense_units=None,
        dropout=0.0, batchnorm=False) -> list[dict]:
    """VGG-style network (PGDL tasks 1 and 8); see the module docstring for the exact layers.

    ``depth`` blocks of two 3x3 convs (block i: ``width * 2**i`` filters) each followed by a 2x2
    max pooling (skipped once a side is below 2), Flatten, ``dense_layers`` hidden Dense layers of
    ``dense_units`` units (default ``4 * width``) each followed by Dropout when ``dropout > 0``, and
    a linear Dense(num_classes).
    """
    shape, num_classes, dropout, batchnorm = _common(input_shape, num_classes, dropout, batchnorm)
    width = _positive_int("width", width)
    depth = _positive_int("depth", depth)
    dense_layers = _positive_int("dense_layers", dense_layers, minimum=0)
    dense_units = 4 * width if dense_units is None else _positive_int("dense_units", dense_units)

    layers: list[dict] = []
    size = shape[:2]
    for i in range(depth):
        filters = width * 2**i
        for _ in range(2):
            layers += [_conv(filters, 3)] + _normalized_relu(batchnorm)
        pool, size = _maybe_pool(size)
        layers += pool
    layers.append({"layer_name": "Flatten"})
    for _ in range(dense_layers):
        layers += [{"layer_name": "Dense", "units": dense_units}] + _normalized_relu(batchnorm)
        layers += _dropout_layer(dropout)
    layers.append({"layer_name": "Dense", "units": num_classes})
    return layers


def nin(input_shape, num_classes, *, width=32, depth=2, dropout=0.0, batchnorm=False) -> list[dict]:
    """Network in Network (PGDL tasks 2, 6, 9); see the module docstring for the exact layers.

    ``depth`` blocks of [3x3 conv, 1x1 conv, 1x1 conv] (``width`` filters each); between blocks a
    2x2 max pooling followed by Dropout when ``dropout > 0``; a linear 1x1 conv to ``num_classes``
    and global average pooling give the logits. Raises ValueError when the input is too small for
    the ``depth - 1`` poolings.
    """
    shape, num_classes, dropout, batchnorm = _common(input_shape, num_classes, dropout, batchnorm)
    width = _positive_int("width", width)
    depth = _positive_int("depth", depth)
    allowed = _count_halvings(shape[:2], ceil=False)
    if depth - 1 > allowed:
        raise _too_deep("nin", depth, shape, depth - 1, "2x2 max poolings", allowed)

    layers: list[dict] = []
    size = shape[:2]
    for b in range(depth):
        layers += [_conv(width, 3)] + _normalized_relu(batchnorm)
        for _ in range(2):
            layers += [_conv(width, 1)] + _normalized_relu(batchnorm)
        if b < depth - 1:
            pool, size = _maybe_pool(size)
            assert pool, "checked above"
            layers += pool + _dropout_layer(dropout)
    layers += [_conv(num_classes, 1), {"layer_name": "GlobalAveragePooling2D"}]
    return layers


def allconv(input_shape, num_classes, *, width=32, depth=3, dropout=0.0, batchnorm=False) -> list[dict]:
    """Fully convolutional network (PGDL tasks 4, 5); see the module docstring for the exact layers.

    ``depth`` 3x3 "same" convs of ``width`` filters, the 2nd, 4th, ... with stride 2, each followed
    by Dropout when ``dropout > 0``; a linear 1x1 conv to ``num_classes`` and global average pooling
    give the logits. Raises ValueError when the input is too small for the ``depth // 2`` strides.
    """
    shape, num_classes, dropout, batchnorm = _common(input_shape, num_classes, dropout, batchnorm)
    width = _positive_int("width", width)
    depth = _positive_int("depth", depth)
    allowed = _count_halvings(shape[:2], ceil=True)
    if depth // 2 > allowed:
        raise _too_deep("allconv", depth, shape, depth // 2, "stride-2 convolutions", allowed)

    layers: list[dict] = []
    for i in range(1, depth + 1):
        layers += [_conv(width, 3, strides=2 if i % 2 == 0 else 1)] + _normalized_relu(batchnorm)
        layers += _dropout_layer(dropout)
    layers += [_conv(num_classes, 1), {"layer_name": "GlobalAveragePooling2D"}]
    return layers


def cnn4(input_shape, num_classes, *, width=32, dropout=0.0, batchnorm=False) -> list[dict]:
    """The four-conv MNIST CNN of the BatchNorm paper (arXiv 2501.14441), as described in the module docstring.

    Convs of ``width, width, 2*width, 2*width`` filters (3x3, "same"), a 2x2 max pooling after the
    2nd and the 4th (skipped once a side is below 2), each pooling stage followed by Dropout when
    ``dropout > 0``, Flatten and a linear Dense(num_classes).
    """
    shape, num_classes, dropout, batchnorm = _common(input_shape, num_classes, dropout, batchnorm)
    width = _positive_int("width", width)

    layers: list[dict] = []
    size = shape[:2]
    for filters in (width, 2 * width):
        for _ in range(2):
            layers += [_conv(filters, 3)] + _normalized_relu(batchnorm)
        pool, size = _maybe_pool(size)
        layers += pool + _dropout_layer(dropout)
    layers += [{"layer_name": "Flatten"}, {"layer_name": "Dense", "units": num_classes}]
    return layers


def mlp(input_shape, num_classes, *, width=64, depth=1, dropout=0.0, batchnorm=False) -> list[dict]:
    """A multilayer perceptron: Flatten, ``depth`` hidden Dense(width) + ReLU layers, Dense(num_classes)."""
    _, num_classes, dropout, batchnorm = _common(input_shape, num_classes, dropout, batchnorm)
    width = _positive_int("width", width)
    depth = _positive_int("depth", depth)
    layers: list[dict] = [{"layer_name": "Flatten"}]
    for _ in range(depth):
        layers += [{"layer_name": "Dense", "units": width}] + _normalized_relu(batchnorm) + _dropout_layer(dropout)
    return layers + [{"layer_name": "Dense", "units": num_classes}]


def vgg16(input_shape, num_classes, *, width=64, dropout=0.0, batchnorm=False) -> list[dict]:
    """VGG-16 (13 convs in 5 blocks, 2 hidden Dense layers), as described in the module docstring."""
    shape, num_classes, dropout, batchnorm = _common(input_shape, num_classes, dropout, batchnorm)
    width = _positive_int("width", width)
    layers: list[dict] = []
    size = shape[:2]
    for convs, factor in zip((2, 2, 3, 3, 3), (1, 2, 4, 8, 8)):
        for _ in range(convs):
            layers += [_conv(width * factor, 3)] + _normalized_relu(batchnorm)
        pool, size = _maybe_pool(size)
        layers += pool + _dropout_layer(dropout)
    layers.append({"layer_name": "Flatten"})
    for _ in range(2):
        layers += [{"layer_name": "Dense", "units": 8 * width}] + _normalized_relu(batchnorm)
    return layers + [{"layer_name": "Dense", "units": num_classes}]


ARCHITECTURES: dict[str, Callable[..., list[dict]]] = {"vgg": vgg, "nin": nin, "allconv": allconv, "cnn4": cnn4,
                                                       "mlp": mlp, "vgg16": vgg16}


def strip_batchnorm(layers) -> list[dict]:
    """The same layer list without its BatchNormalization entries (copies; the input is untouched)."""
    if not isinstance(layers, (list, tuple)):
        raise ValueError(f"layers must be a list of layer dicts, got {type(layers).__name__}")
    out = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict) or "layer_name" not in layer:
            raise ValueError(f"layers[{index}] is not a dict with a 'layer_name'")
        if layer["layer_name"] != "BatchNormalization":
            out.append(copy.deepcopy(layer))
    return out
