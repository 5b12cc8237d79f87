"""PGDL layer lists (``config.json``) as torch networks with exact Keras semantics.

A PGDL model is a Keras ``Sequential`` stack described by ``[{"layer_name": CLASS, **kwargs}, ...]``
plus an input shape. Each supported class becomes a torch module that computes what the Keras layer
computes at inference (and trains like it, for the in-house zoos), on NCHW tensors:

* Conv2D kernels are stored HWIO (torch: OIHW), Dense kernels (in, out) (torch: (out, in));
* ``padding="same"`` pads as TensorFlow does: the odd pixel goes to the bottom/right;
* pooling strides default to the pool size; average pooling with "same" excludes the padding;
* Flatten flattens in NHWC order, so a Dense layer after convolutions sees Keras' feature order;
* BatchNormalization defaults to epsilon 1e-3 and momentum 0.99, weights gamma, beta, moving mean,
  moving variance (gamma/beta absent when ``scale``/``center`` is False).

Anything outside that set (another layer class, an argument whose value changes the computation in a
way not implemented here) is refused with an error naming the file, the layer index and the key.
Shapes and parameter counts are worked out from the configuration before any tensor is allocated.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import TaskFormatError

# Untrusted configurations are sized before anything is allocated.
MAX_LAYER_PARAMETERS = 200_000_000
MAX_TOTAL_PARAMETERS = 1_000_000_000
MAX_ACTIVATION_ELEMENTS = 64_000_000  # per sample, per layer

# Arguments that never change what a layer computes at inference.
_INERT = {
    "name", "trainable", "dtype", "input_shape", "batch_input_shape", "batch_size",
    "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
    "activity_regularizer", "kernel_constraint", "bias_constraint",
    "beta_initializer", "gamma_initializer", "moving_mean_initializer",
    "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
    "beta_constraint", "gamma_constraint", "seed", "autocast",
}


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "linear": None,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": None,  # axis-dependent, handled by _apply_activation
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "exponential": torch.exp,
    "gelu": F.gelu,  # the exact (erf) form, Keras' default
}


def _apply_activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "linear":
        return x
    if name == "softmax":
        return torch.softmax(x, dim=1)  # the channel axis, in NCHW and in (N, features) alike
    return ACTIVATIONS[name](x)


class _Args:
    """The keyword arguments of one layer, consumed one by one so leftovers can be refused."""

    def __init__(self, kwargs: dict[str, Any], where: str):
        self.kwargs = dict(kwargs)
        self.where = where

    def error(self, message: str) -> TaskFormatError:
        return TaskFormatError(f"{self.where}: {message}")

    def pop(self, key: str, default: Any = None) -> Any:
        return self.kwargs.pop(key, default)

    def int(self, key: str, default: Any = None, minimum: int = 0) -> int:
        value = self.kwargs.pop(key, default)
        return _as_int(value, key, self, minimum)

    def pair(self, key: str, default: Any, minimum: int = 1, allow_none: bool = False):
        value = self.kwargs.pop(key, default)
        if value is None and allow_none:
            return None
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise self.error(f"argument '{key}' must be an int or a pair, got {value!r}")
            return tuple(_as_int(v, key, self, minimum) for v in value)
        v = _as_int(value, key, self, minimum)
        return (v, v)

    def bool(self, key: str, default: bool) -> bool:
        value = self.kwargs.pop(key, default)
        if not isinstance(value, bool):
            raise self.error(f"argument '{key}' must be true or false, got {value!r}")
        return value

    def float(self, key: str, default: float | None, minimum: float | None = None) -> float | None:
        value = self.kwargs.pop(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(f"argument '{key}' must be a finite number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(f"argument '{key}' must be >= {minimum}, got {value!r}")
        return float(value)

    def choice(self, key: str, default: Any, allowed: tuple) -> Any:
        value = self.kwargs.pop(key, default)
        if isinstance(value, str):
            value = value.lower()
        if value not in allowed:
            raise self.error(f"argument '{key}'={value!r} is not supported (expected one of {allowed})")
        return value

    def activation(self) -> str:
        value = self.kwargs.pop("activation", None)
        if value is None:
            return "linear"
        if not isinstance(value, str) or value.lower() not in ACTIVATIONS:
            raise self.error(f"unknown activation {value!r} (supported: {', '.join(sorted(ACTIVATIONS))})")
        return value.lower()

    def data_format(self) -> None:
        self.choice("data_format", "channels_last", ("channels_last", None))

    def finish(self) -> None:
        for key in list(self.kwargs):
            if key in _INERT:
                del self.kwargs[key]
        if self.kwargs:
            key = sorted(self.kwargs)[0]
            raise self.error(f"unknown or unsupported argument '{key}'={self.kwargs[key]!r}")


def _as_int(value: Any, key: str, args: _Args, minimum: int) -> int:
    # The official loader casts integral floats to int; anything else is a configuration error.
    if isinstance(value, bool) or value is None:
        raise args.error(f"argument '{key}' must be an integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise args.error(f"argument '{key}' must be an integer, got {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise args.error(f"argument '{key}' must be an integer, got {value!r}")
    if value < minimum:
        raise args.error(f"argument '{key}' must be >= {minimum}, got {value}")
    return value


def _same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: (before, after), the extra pixel after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _need_image(shape: tuple, args: _Args, layer: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise args.error(f"{layer} needs an image input (H, W, C), got shape {list(shape)}")
    return shape


# ---------------------------------------------------------------------------------------------
# Layers. Each knows its Keras weight layout: keras_weight_shapes(), get/set_keras_weights().


class KerasLayer(nn.Module):
    keras_class = ""
    base_name = ""

    def keras_weight_names(self) -> list[str]:
        return []

    def keras_weight_shapes(self) -> list[tuple[int, ...]]:
        return []

    def get_keras_weights(self) -> list[np.ndarray]:
        return []

    def set_keras_weights(self, arrays: list[np.ndarray]) -> None:
        pass


class Conv2D(KerasLayer):
    keras_class = "Conv2D"
    base_name = "conv2d"

    def __init__(self, in_channels, filters, kernel, strides, dilation, pads, use_bias, activation):
        super().__init__()
        self.kernel_size = kernel
        self.activation = activation
        symmetric = pads[0] == pads[1] and pads[2] == pads[3]
        self.pad = None if symmetric else pads  # (left, right, top, bottom) for F.pad
        self.conv = nn.Conv2d(
            in_channels, filters, kernel, stride=strides, dilation=dilation,
            padding=(pads[2], pads[0]) if symmetric else 0, bias=use_bias,
        )

    @property
    def affine(self) -> nn.Conv2d:
        """The torch layer holding this layer's kernel and bias: the affine map before ``activation``."""
        return self.conv

    def forward(self, x):
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return _apply_activation(self.activation, self.conv(x))

    def keras_weight_names(self):
        return ["kernel", "bias"] if self.conv.bias is not None else ["kernel"]

    def keras_weight_shapes(self):
        o, i, kh, kw = self.conv.weight.shape
        return [(kh, kw, i, o)] + ([(o,)] if self.conv.bias is not None else [])

    def get_keras_weights(self):
        out = [self.conv.weight.detach().permute(2, 3, 1, 0).cpu().numpy()]
        if self.conv.bias is not None:
            out.append(self.conv.bias.detach().cpu().numpy())
        return out

    def set_keras_weights(self, arrays):
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(arrays[0].transpose(3, 2, 0, 1))))
            if self.conv.bias is not None:
                self.conv.bias.copy_(torch.from_numpy(arrays[1]))


class Dense(KerasLayer):
    keras_class = "Dense"
    base_name = "dense"

    def __init__(self, in_features, units, use_bias, activation):
        super().__init__()
        self.activation = activation
        self.linear = nn.Linear(in_features, units, bias=use_bias)

    @property
    def affine(self) -> nn.Linear:
        """The torch layer holding this layer's kernel and bias: the affine map before ``activation``."""
        return self.linear

    def forward(self, x):
        if x.dim() == 4:  # Keras applies Dense to the last (channel) axis of an image
            return _apply_activation(self.activation, self.linear(x.movedim(1, -1)).movedim(-1, 1))
        return _apply_activation(self.activation, self.linear(x))

    def keras_weight_names(self):
        return ["kernel", "bias"] if self.linear.bias is not None else ["kernel"]

    def keras_weight_shapes(self):
        o, i = self.linear.weight.shape
        return [(i, o)] + ([(o,)] if self.linear.bias is not None else [])

    def get_keras_weights(self):
        out = [self.linear.weight.detach().t().cpu().numpy()]
        if self.linear.bias is not None:
            out.append(self.linear.bias.detach().cpu().numpy())
        return out

    def set_keras_weights(self, arrays):
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(arrays[0].T)))
            if self.linear.bias is not None:
                self.linear.bias.copy_(torch.from_numpy(arrays[1]))


class BatchNormalization(KerasLayer):
    keras_class = "BatchNormalization"
    base_name = "batch_normalization"

    def __init__(self, channels, momentum, epsilon, center, scale):
        super().__init__()
        self.momentum = momentum
        self.epsilon = epsilon
        self.gamma = nn.Parameter(torch.ones(channels)) if scale else None
        self.beta = nn.Parameter(torch.zeros(channels)) if center else None
        self.register_buffer("moving_mean", torch.zeros(channels))
        self.register_buffer("moving_variance", torch.ones(channels))

    def forward(self, x):
        # Keras updates moving = momentum * moving + (1 - momentum) * batch; torch's momentum is 1 - that.
        return F.batch_norm(
            x, self.moving_mean, self.moving_variance, self.gamma, self.beta,
            training=self.training, momentum=1.0 - self.momentum, eps=self.epsilon,
        )

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This layer in eval mode as y = x * s + t per channel, float64 on the CPU.

        s = gamma / sqrt(moving_variance + epsilon), t = beta - moving_mean * s (gamma = 1, beta = 0
        when the layer has none).
        """
        var = self.moving_variance.detach().cpu().to(torch.float64)
        mean = self.moving_mean.detach().cpu().to(torch.float64)
        gamma = self.gamma.detach().cpu().to(torch.float64) if self.gamma is not None else torch.ones_like(var)
        beta = self.beta.detach().cpu().to(torch.float64) if self.beta is not None else torch.zeros_like(var)
        s = gamma / torch.sqrt(var + self.epsilon)
        return s, beta - mean * s

    def _tensors(self):
        return [t for t in (self.gamma, self.beta) if t is not None] + [self.moving_mean, self.moving_variance]

    def keras_weight_names(self):
        names = (["gamma"] if self.gamma is not None else []) + (["beta"] if self.beta is not None else [])
        return names + ["moving_mean", "moving_variance"]

    def keras_weight_shapes(self):
        return [tuple(t.shape) for t in self._tensors()]

    def get_keras_weights(self):
        return [t.detach().cpu().numpy() for t in self._tensors()]

    def set_keras_weights(self, arrays):
        with torch.no_grad():
            for tensor, array in zip(self._tensors(), arrays):
                tensor.copy_(torch.from_numpy(np.asarray(array)))


class Pooling2D(KerasLayer):
    def __init__(self, kind, pool, strides, pads):
        super().__init__()
        self.kind = kind
        self.base_name = "max_pooling2d" if kind == "max" else "average_pooling2d"
        self.keras_class = "MaxPooling2D" if kind == "max" else "AveragePooling2D"
        self.pool = pool
        self.strides = strides
        self.pads = pads if any(pads) else None  # (left, right, top, bottom)

    def forward(self, x):
        if self.kind == "max":
            if self.pads is not None:
                x = F.pad(x, self.pads, value=float("-inf"))
            return F.max_pool2d(x, self.pool, self.strides)
        if self.pads is None:
            return F.avg_pool2d(x, self.pool, self.strides)
        # TensorFlow averages over the real pixels only: divide window sums by window counts.
        ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
        sums = F.avg_pool2d(F.pad(x, self.pads), self.pool, self.strides, divisor_override=1)
        counts = F.avg_pool2d(F.pad(ones, self.pads), self.pool, self.strides, divisor_override=1)
        return sums / counts


class GlobalPooling2D(KerasLayer):
    def __init__(self, kind, keepdims):
        super().__init__()
        self.kind = kind
        self.keepdims = keepdims
        self.base_name = "global_max_pooling2d" if kind == "max" else "global_average_pooling2d"
        self.keras_class = "GlobalMaxPooling2D" if kind == "max" else "GlobalAveragePooling2D"

    def forward(self, x):
        if self.kind == "max":
            return x.amax(dim=(2, 3), keepdim=self.keepdims)
        return x.mean(dim=(2, 3), keepdim=self.keepdims)


class Dropout(KerasLayer):
    keras_class = "Dropout"
    base_name = "dropout"

    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        return F.dropout(x, self.rate, training=self.training) if self.rate > 0 else x


class Flatten(KerasLayer):
    keras_class = "Flatten"
    base_name = "flatten"

    def forward(self, x):
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)  # NHWC order, as Keras flattens
        return x.flatten(1)


class Activation(KerasLayer):
    keras_class = "Activation"
    base_name = "activation"

    def __init__(self, activation):
        super().__init__()
        self.activation = activation

    def forward(self, x):
        return _apply_activation(self.activation, x)


class ReLU(KerasLayer):
    keras_class = "ReLU"
    base_name = "re_lu"

    def __init__(self, max_value, negative_slope, threshold):
        super().__init__()
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold

    def forward(self, x):
        # Keras' relu, step by step: x where x > threshold (0 elsewhere, x == threshold included),
        # clipped to [0, max_value], minus negative_slope * (threshold - x)+.
        if self.threshold == 0:
            out = torch.relu(x)
        else:
            out = torch.where(x > self.threshold, x, torch.zeros_like(x))
        if self.max_value is not None:
            out = out.clamp(0.0, self.max_value)
        if self.negative_slope != 0:
            out = out - self.negative_slope * torch.relu(self.threshold - x)
        return out


class ZeroPadding2D(KerasLayer):
    keras_class = "ZeroPadding2D"
    base_name = "zero_padding2d"

    def __init__(self, pads):
        super().__init__()
        self.pads = pads  # (left, right, top, bottom)

    def forward(self, x):
        return F.pad(x, self.pads)


# ---------------------------------------------------------------------------------------------
# Builders: (kwargs, input shape) -> (module, output shape, parameter count). Shapes are Keras'
# (H, W, C) or (features,), without the batch axis.


def _conv_out(size, kernel, stride, dilation, padding):
    if padding == "same":
        return -(-size // stride)
    return (size - ((kernel - 1) * dilation + 1)) // stride + 1


def _build_conv2d(args: _Args, shape):
    h, w, c = _need_image(shape, args, "Conv2D")
    filters = args.int("filters", None, minimum=1)
    kernel = args.pair("kernel_size", None)
    strides = args.pair("strides", 1)
    dilation = args.pair("dilation_rate", 1)
    padding = args.choice("padding", "valid", ("valid", "same"))
    use_bias = args.bool("use_bias", True)
    activation = args.activation()
    args.data_format()
    if args.int("groups", 1, minimum=1) != 1:
        raise args.error("argument 'groups' other than 1 is not supported")
    if max(strides) > 1 and max(dilation) > 1:
        raise args.error("strides > 1 together with dilation_rate > 1 is not allowed (as in Keras)")
    params = kernel[0] * kernel[1] * c * filters + (filters if use_bias else 0)
    out_h = _conv_out(h, kernel[0], strides[0], dilation[0], padding)
    out_w = _conv_out(w, kernel[1], strides[1], dilation[1], padding)
    if out_h < 1 or out_w < 1:
        raise args.error(f"kernel {list(kernel)} does not fit the input of shape {list(shape)}")
    if padding == "same":
        top, bottom = _same_padding(h, kernel[0], strides[0], dilation[0])
        left, right = _same_padding(w, kernel[1], strides[1], dilation[1])
    else:
        top = bottom = left = right = 0

    def make():
        return Conv2D(c, filters, kernel, strides, dilation, (left, right, top, bottom), use_bias, activation)

    return make, (out_h, out_w, filters), params


def _build_dense(args: _Args, shape):
    units = args.int("units", None, minimum=1)
    use_bias = args.bool("use_bias", True)
    activation = args.activation()
    if len(shape) not in (1, 3):
        raise args.error(f"Dense needs an input of rank 1 or 3, got shape {list(shape)}")
    params = shape[-1] * units + (units if use_bias else 0)
    return (lambda: Dense(shape[-1], units, use_bias, activation)), tuple(shape[:-1]) + (units,), params


def _build_batchnorm(args: _Args, shape):
    axis = args.pop("axis", -1)
    if isinstance(axis, (list, tuple)) and len(axis) == 1:
        axis = axis[0]
    if axis not in (-1, len(shape)):
        raise args.error(f"argument 'axis'={axis!r} is not supported (only the channel axis, -1)")
    momentum = args.float("momentum", 0.99, minimum=0.0)
    epsilon = args.float("epsilon", 1e-3, minimum=0.0)
    center = args.bool("center", True)
    scale = args.bool("scale", True)
    for key, default in (("renorm", False), ("fused", None), ("virtual_batch_size", None),
                         ("adjustment", None), ("synchronized", False)):
        value = args.pop(key, default)
        if value != default and not (key == "fused" and isinstance(value, bool)):
            raise args.error(f"argument '{key}'={value!r} is not supported")
    channels = shape[-1]
    params = channels * (2 + int(center) + int(scale))
    return (lambda: BatchNormalization(channels, momentum, epsilon, center, scale)), tuple(shape), params


def _build_pooling(kind):
    def build(args: _Args, shape):
        h, w, c = _need_image(shape, args, f"{kind} pooling")
        pool = args.pair("pool_size", 2)
        strides = args.pair("strides", None, allow_none=True) or pool
        padding = args.choice("padding", "valid", ("valid", "same"))
        args.data_format()
        out_h = _conv_out(h, pool[0], strides[0], 1, padding)
        out_w = _conv_out(w, pool[1], strides[1], 1, padding)
        if out_h < 1 or out_w < 1:
            raise args.error(f"pool size {list(pool)} does not fit the input of shape {list(shape)}")
        if padding == "same":
            top, bottom = _same_padding(h, pool[0], strides[0])
            left, right = _same_padding(w, pool[1], strides[1])
        else:
            top = bottom = left = right = 0
        return (lambda: Pooling2D(kind, pool, strides, (left, right, top, bottom))), (out_h, out_w, c), 0

    return build


def _build_global_pooling(kind):
    def build(args: _Args, shape):
        h, w, c = _need_image(shape, args, f"global {kind} pooling")
        keepdims = args.bool("keepdims", False)
        args.data_format()
        return (lambda: GlobalPooling2D(kind, keepdims)), ((1, 1, c) if keepdims else (c,)), 0

    return build


def _build_dropout(args: _Args, shape):
    rate = args.float("rate", None, minimum=0.0)
    if rate is None or rate >= 1:
        raise args.error(f"argument 'rate' must be in [0, 1), got {rate!r}")
    if args.pop("noise_shape", None) is not None:
        raise args.error("argument 'noise_shape' is not supported")
    return (lambda: Dropout(rate)), tuple(shape), 0


def _build_flatten(args: _Args, shape):
    args.data_format()
    return Flatten, (int(np.prod(shape)),), 0


def _build_activation(args: _Args, shape):
    if "activation" not in args.kwargs:
        raise args.error("Activation needs an 'activation' argument")
    activation = args.activation()
    return (lambda: Activation(activation)), tuple(shape), 0


def _build_relu(args: _Args, shape):
    max_value = args.float("max_value", None, minimum=0.0)
    negative_slope = args.float("negative_slope", 0.0, minimum=0.0)
    threshold = args.float("threshold", 0.0)
    return (lambda: ReLU(max_value, negative_slope, threshold)), tuple(shape), 0


def _build_zero_padding(args: _Args, shape):
    h, w, c = _need_image(shape, args, "ZeroPadding2D")
    value = args.pop("padding", 1)
    args.data_format()
    try:
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (list, tuple)) for v in value):
            (top, bottom), (left, right) = value
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            (top, left) = value
            bottom, right = top, left
        else:
            top = bottom = left = right = value
        top, bottom, left, right = (_as_int(v, "padding", args, 0) for v in (top, bottom, left, right))
    except (TypeError, ValueError):
        raise args.error(f"argument 'padding'={value!r} is not a valid padding") from None
    return (lambda: ZeroPadding2D((left, right, top, bottom))), (h + top + bottom, w + left + right, c), 0


BUILDERS = {
    "Conv2D": _build_conv2d,
    "Dense": _build_dense,
    "BatchNormalization": _build_batchnorm,
    "MaxPooling2D": _build_pooling("max"),
    "AveragePooling2D": _build_pooling("average"),
    "GlobalAveragePooling2D": _build_global_pooling("average"),
    "GlobalMaxPooling2D": _build_global_pooling("max"),
    "Dropout": _build_dropout,
    "Flatten": _build_flatten,
    "Activation": _build_activation,
    "ReLU": _build_relu,
    "ZeroPadding2D": _build_zero_padding,
}
ALIASES = {
    "Convolution2D": "Conv2D",
    "MaxPool2D": "MaxPooling2D",
    "AvgPool2D": "AveragePooling2D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
}
SUPPORTED_LAYERS = tuple(BUILDERS)


class KerasSequential(nn.Sequential):
    """A torch network equivalent to a PGDL layer list; layers carry Keras-style names.

    ``layer_config`` is the layer list it was built from, ``input_shape`` the Keras input shape
    (H, W, C) or (features,), ``output_shapes`` the Keras shape after each layer.
    """

    def __init__(self, layers: list[tuple[str, KerasLayer]], layer_config, input_shape, output_shapes):
        super().__init__()
        for name, module in layers:
            self.add_module(name, module)
        self.layer_config = layer_config
        self.input_shape = tuple(input_shape)
        self.output_shapes = list(output_shapes)

    @property
    def num_outputs(self) -> int:
        return int(self.output_shapes[-1][-1])

    def weighted_layers(self) -> list[tuple[str, KerasLayer]]:
        return [(n, m) for n, m in self.named_children() if m.keras_weight_shapes()]

    def get_keras_weights(self) -> list[np.ndarray]:
        """All weights in Keras ``model.get_weights()`` order and layout."""
        return [w for _, m in self.named_children() for w in m.get_keras_weights()]

    def set_keras_weights(self, arrays: list[np.ndarray], where: str = "weights") -> None:
        """Load weights given in Keras ``get_weights()`` order, checking every shape first."""
        expected = [(n, s) for n, m in self.named_children() for s in m.keras_weight_shapes()]
        if len(arrays) != len(expected):
            raise TaskFormatError(f"{where}: {len(arrays)} weight arrays, the layer list needs {len(expected)}")
        for (name, shape), array in zip(expected, arrays):
            if tuple(np.shape(array)) != tuple(shape):
                raise TaskFormatError(
                    f"{where}: layer '{name}' expects a weight of shape {list(shape)}, got {list(np.shape(array))}"
                )
        position = 0
        for _, module in self.named_children():
            count = len(module.keras_weight_shapes())
            if count:
                module.set_keras_weights([np.asarray(a, dtype=np.float32) for a in arrays[position : position + count]])
            position += count


def keras_input_shape(value: Any, where: str = "config.json") -> tuple[int, ...]:
    """A config's ``input_shape`` ([H, W, C] or [features], positive integers) as a tuple, or an error naming ``where``."""
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 3):
        shown = repr(value) if len(repr(value)) <= 80 else f"a {type(value).__name__} of length {len(value)}"
        raise TaskFormatError(f"{where}: 'input_shape' must be [H, W, C] or [features], got {shown}")
    return tuple(_as_int(v, "input_shape", _Args({}, where), 1) for v in value)


def layer_plan(layer_config: list, input_shape, where: str = "config.json"):
    """Validate a layer list and work out every shape; returns [(class, builder thunk, shape, params)].

    Nothing is allocated here, so an absurd configuration is refused before it costs memory.
    """
    if not isinstance(layer_config, list) or not layer_config:
        raise TaskFormatError(f"{where}: 'model_config' must be a non-empty list of layers")
    shape = keras_input_shape(input_shape, where)
    if int(np.prod(shape)) > MAX_ACTIVATION_ELEMENTS:
        raise TaskFormatError(f"{where}: input shape {list(shape)} is larger than {MAX_ACTIVATION_ELEMENTS} elements")
    plan = []
    total = 0
    for index, spec in enumerate(layer_config):
        if not isinstance(spec, dict) or "layer_name" not in spec:
            raise TaskFormatError(f"{where}: layer {index} is not an object with a 'layer_name'")
        kwargs = dict(spec)
        cls = kwargs.pop("layer_name")
        cls = ALIASES.get(cls, cls)
        if cls not in BUILDERS:
            raise TaskFormatError(
                f"{where}: layer {index}: unknown layer class {cls!r} (supported: {', '.join(SUPPORTED_LAYERS)})"
            )
        args = _Args(kwargs, f"{where}: layer {index} ({cls})")
        make, out_shape, params = BUILDERS[cls](args, shape)
        args.finish()
        if params > MAX_LAYER_PARAMETERS:
            raise args.error(f"{params:,} parameters is over the limit of {MAX_LAYER_PARAMETERS:,} per layer")
        total += params
        if total > MAX_TOTAL_PARAMETERS:
            raise args.error(f"the network would exceed {MAX_TOTAL_PARAMETERS:,} parameters")
        if int(np.prod(out_shape)) > MAX_ACTIVATION_ELEMENTS:
            raise args.error(f"output shape {list(out_shape)} is larger than {MAX_ACTIVATION_ELEMENTS} elements")
        plan.append((cls, make, out_shape, params))
        shape = out_shape
    return plan


def build_network(layer_config: list, input_shape, where: str = "config.json") -> KerasSequential:
    """Build the torch equivalent of a PGDL layer list, in eval mode, with freshly initialised weights."""
    plan = layer_plan(layer_config, input_shape, where)
    counts: dict[str, int] = {}
    layers = []
    for cls, make, _, _ in plan:
        module = make()
        base = module.base_name
        n = counts.get(base, 0)
        counts[base] = n + 1
        layers.append((base if n == 0 else f"{base}_{n}", module))
    net = KerasSequential(layers, layer_config, input_shape, [p[2] for p in plan])
    return net.eval()


def parameter_count(layer_config: list, input_shape, where: str = "config.json") -> int:
    """Number of Keras weights (trainable and not) of a layer list, without building it."""
    return sum(p[3] for p in layer_plan(layer_config, input_shape, where))
