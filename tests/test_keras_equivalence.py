"""The torch converter of PGDL layer lists computes exactly what Keras computes.

Keras 3 (torch backend, no TensorFlow) is the independent oracle: the same layer list is built as a
``keras.Sequential`` the way the official PGDL loader builds it (class name + kwargs, integral floats
cast to int, built on ``[None] + input_shape``), the weights travel through a Keras-2 HDF5 weight file,
and both networks must give the same logits (max abs difference <= 1e-4) on random inputs.

Covered:
* architectures that together use every supported layer class and option (checked by
  ``test_architectures_cover_every_layer_and_option``), weights written by our writer and read by
  Keras' legacy-HDF5 loader (and checked to have really been loaded), one of them through
  ``writer.write_model`` (config.json + weights.hdf5 + weights_init.hdf5);
* the reverse direction: legacy HDF5 files written by Keras 3 (full-model ``.h5`` and weights-only)
  read into our networks;
* every activation name we support, as an ``Activation`` layer and as an ``activation=`` kwarg;
* ReLU options, including the Keras-2 behaviour for negative thresholds (the Keras 3 layer refuses
  them, its relu op still computes what TF 2.4's ``K.relu`` computed);
* the real PGDL toy fixture: its Keras-2.4 weight files give the same logits in Keras and in ours.

Known Keras 3 deviation, handled here: with the torch backend, ``AveragePooling2D(padding="same")``
pads an asymmetric border by replicating the edge pixel and then averages it in, while TensorFlow (and
so PGDL) averages over the real pixels only. The two agree when the padding is symmetric or the pool
is 2 wide, so the Keras comparisons use only those cases; the asymmetric cases are checked against a
brute-force reference of TensorFlow's rule instead.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "torch"  # must be set before keras is first imported

keras = pytest.importorskip(
    "keras", minversion="3", reason="Keras 3 (torch backend) is the oracle of these tests; pip install keras"
)
if keras.backend.backend() != "torch":
    pytest.skip(
        f"keras was imported with the {keras.backend.backend()!r} backend; these tests need KERAS_BACKEND=torch",
        allow_module_level=True,
    )

from task_loaders import build_network, write_model  # noqa: E402
from task_loaders.keras_layers import ACTIVATIONS, SUPPORTED_LAYERS  # noqa: E402
from task_loaders.keras_weights import (  # noqa: E402
    load_network_weights,
    read_weight_file,
    read_weights,
    write_network_weights,
)

# Keras 3's torch backend converts its tensors with np.array(x), which numpy 2 flags on every call.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

TOLERANCE = 1e-4


# ---------------------------------------------------------------------------------------------
# Architectures. Comments give the Keras shape after each layer and, for "same" layers, the
# (before, after) padding per axis: asymmetric ones (extra pixel bottom/right) are marked "asym".

ARCHITECTURES = {
    # 3 channels, odd height and even width.
    "conv_bn_maxpool_flatten": (
        [17, 16, 3],
        [
            # H 17: pad (1,1); W 16: pad (0,1) asym -> (9, 8, 8)
            {"layer_name": "Conv2D", "filters": 8.0, "kernel_size": 3.0, "strides": 2, "padding": "same",
             "activation": "relu"},
            {"layer_name": "BatchNormalization", "epsilon": 0.01, "momentum": 0.9},
            # dilation 2, kernel (3, 2): effective (5, 3), pads (2,2), (1,1) -> (9, 8, 12)
            {"layer_name": "Conv2D", "filters": 12, "kernel_size": [3, 2], "dilation_rate": 2, "padding": "same",
             "activation": "tanh"},
            {"layer_name": "BatchNormalization", "scale": False},
            # H 9: pad (1,1); W 8: pad (0,1) asym -> (5, 4, 12)
            {"layer_name": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
            # valid, no bias -> (4, 3, 16)
            {"layer_name": "Conv2D", "filters": 16, "kernel_size": [2, 2], "padding": "valid", "use_bias": False,
             "activation": "selu"},
            {"layer_name": "BatchNormalization", "center": False},
            {"layer_name": "Activation", "activation": "softplus"},
            {"layer_name": "Flatten"},  # 192 features in NHWC order
            {"layer_name": "Dropout", "rate": 0.5},
            {"layer_name": "Dense", "units": 32.0, "activation": "swish"},
            {"layer_name": "BatchNormalization", "center": False, "scale": False, "epsilon": 1e-5},
            {"layer_name": "Dense", "units": 10},
        ],
    ),
    # 1 channel, even size; ZeroPadding2D in its three forms, ReLU options, average pooling.
    "nin_zeropad_relu_gap": (
        [16, 16, 1],
        [
            {"layer_name": "ZeroPadding2D", "padding": 2},  # (20, 20, 1)
            {"layer_name": "MaxPooling2D"},  # pool 2, strides = pool, valid -> (10, 10, 1)
            {"layer_name": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "elu"},  # valid -> (8, 8, 8)
            {"layer_name": "ReLU", "max_value": 6.0},
            {"layer_name": "Conv2D", "filters": 8, "kernel_size": 1, "activation": "relu"},
            {"layer_name": "BatchNormalization", "epsilon": 1e-4, "center": False, "scale": False},
            {"layer_name": "ZeroPadding2D", "padding": [1, 2]},  # (10, 12, 8)
            {"layer_name": "AveragePooling2D", "pool_size": 2},  # strides = pool -> (5, 6, 8)
            {"layer_name": "ZeroPadding2D", "padding": [[0, 1], [2, 0]]},  # (6, 8, 8)
            # H 6: pad (0,1) asym; W 8: pad (0,1) asym -> (3, 4, 10)
            {"layer_name": "Conv2D", "filters": 10, "kernel_size": 3, "strides": 2, "padding": "same",
             "use_bias": False},
            {"layer_name": "ReLU", "threshold": 0.1, "negative_slope": 0.05, "max_value": 2.5},
            # pool 3, stride 1: pads (1,1) both axes (symmetric, where Keras 3 torch agrees with TF)
            {"layer_name": "AveragePooling2D", "pool_size": 3, "strides": 1, "padding": "same"},
            {"layer_name": "ReLU", "negative_slope": 0.2},
            {"layer_name": "GlobalAveragePooling2D"},  # (10,)
        ],
    ),
    # 4 channels, odd sizes; Dense on an image, softmax over channels, global max pooling.
    "dense_on_image_gmp": (
        [9, 11, 4],
        [
            {"layer_name": "Dense", "units": 6, "activation": "sigmoid"},  # (9, 11, 6)
            # kernel 4, stride 2: H 9 pad (1,2) asym; W 11 pad (1,2) asym -> (5, 6, 8)
            {"layer_name": "Conv2D", "filters": 8, "kernel_size": 4, "strides": 2, "padding": "same",
             "activation": "softsign"},
            {"layer_name": "MaxPooling2D", "pool_size": [2, 2], "strides": [1, 1]},  # valid -> (4, 5, 8)
            {"layer_name": "Activation", "activation": "gelu"},
            # pool 2, stride 2: H 4 pads (0,0); W 5 pad (0,1) asym (pool 2: Keras 3 torch agrees) -> (2, 3, 8)
            {"layer_name": "AveragePooling2D", "pool_size": 2, "padding": "same"},
            {"layer_name": "Dense", "units": 5, "activation": "softmax"},  # softmax over channels, (2, 3, 5)
            {"layer_name": "GlobalMaxPooling2D"},  # (5,)
            {"layer_name": "Activation", "activation": "exponential"},
            {"layer_name": "Dense", "units": 7, "use_bias": False, "activation": "linear"},
            {"layer_name": "Activation", "activation": "tanh"},
            {"layer_name": "Dense", "units": 3},
        ],
    ),
    # 3 channels, odd square input; strided valid conv, pooling with explicit strides, keepdims.
    "strided_valid_keepdims": (
        [13, 13, 3],
        [
            {"layer_name": "Conv2D", "filters": 6, "kernel_size": [3, 5], "strides": [2, 1], "padding": "valid",
             "activation": "silu"},  # (6, 9, 6)
            {"layer_name": "MaxPooling2D", "pool_size": [2, 3], "strides": [1, 2], "padding": "same"},  # (6, 5, 6)
            {"layer_name": "AveragePooling2D", "pool_size": [2, 2], "strides": [2, 1]},  # valid -> (3, 4, 6)
            {"layer_name": "Conv2D", "filters": 9, "kernel_size": 2, "dilation_rate": [1, 2], "activation": "sigmoid"},
            {"layer_name": "GlobalAveragePooling2D", "keepdims": True},  # (1, 1, 9)
            {"layer_name": "Flatten"},
            {"layer_name": "Dense", "units": 4, "activation": "selu"},
            {"layer_name": "Dense", "units": 5},
        ],
    ),
    # Feature-vector input (like the toy task).
    "mlp": (
        [20],
        [
            {"layer_name": "Dense", "units": 32, "activation": "relu"},
            {"layer_name": "Dropout", "rate": 0.25},
            {"layer_name": "BatchNormalization"},
            {"layer_name": "Dense", "units": 16, "activation": "elu"},
            {"layer_name": "Activation", "activation": "sigmoid"},
            {"layer_name": "Dense", "units": 8, "activation": "softplus"},
            {"layer_name": "ReLU", "max_value": 0.8, "threshold": 0.3},
            {"layer_name": "Activation", "activation": "softmax"},
            {"layer_name": "Activation", "activation": "linear"},
            {"layer_name": "Dense", "units": 4},
        ],
    ),
}


# ---------------------------------------------------------------------------------------------
# Helpers.


def cast_integral_floats(spec: dict) -> dict:
    """What the official loader does to each layer's kwargs before instantiating the class."""
    return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in spec.items()}


def keras_model(layer_config: list, input_shape) -> "keras.Sequential":
    layers = []
    for spec in layer_config:
        kwargs = cast_integral_floats(spec)
        cls = kwargs.pop("layer_name")
        layers.append(getattr(keras.layers, cls)(**kwargs))
    model = keras.Sequential(layers)
    model.build([None] + list(input_shape))
    return model


def random_weight(name: str, shape, rng: np.random.Generator) -> np.ndarray:
    if name == "kernel":
        fan_in = int(np.prod(shape[:-1]))
        value = rng.normal(0.0, np.sqrt(1.5 / fan_in), shape)
    elif name in ("bias", "beta"):
        value = rng.normal(0.0, 0.3, shape)
    elif name == "gamma":
        value = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    elif name == "moving_mean":
        value = rng.normal(0.0, 0.5, shape)
    elif name == "moving_variance":
        value = rng.uniform(0.3, 2.0, shape)
    else:
        raise AssertionError(name)
    return value.astype(np.float32)


def randomize(net, rng: np.random.Generator) -> None:
    arrays = [
        random_weight(name, shape, rng)
        for _, module in net.named_children()
        for name, shape in zip(module.keras_weight_names(), module.keras_weight_shapes())
    ]
    net.set_keras_weights(arrays)


def random_inputs(input_shape, rng: np.random.Generator, n: int = 8, scale: float = 1.0) -> np.ndarray:
    """A batch in Keras' layout: NHWC images or (N, features)."""
    return rng.normal(0.0, scale, [n] + list(input_shape)).astype(np.float32)


def ours_logits(net, x_keras_layout: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(x_keras_layout)
    if x.dim() == 4:
        x = x.permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    with torch.no_grad():
        out = net.eval()(x)
    if out.dim() == 4:
        out = out.permute(0, 2, 3, 1)  # back to Keras' layout
    return out.cpu().numpy()


def keras_logits(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))


def assert_close(ours: np.ndarray, theirs: np.ndarray, what: str) -> float:
    assert ours.shape == theirs.shape, f"{what}: shapes {ours.shape} vs {theirs.shape}"
    assert np.all(np.isfinite(ours)) and np.all(np.isfinite(theirs)), what
    diff = float(np.max(np.abs(ours - theirs)))
    print(f"{what}: max |diff| = {diff:.3g} (logit scale {float(np.max(np.abs(theirs))):.3g})")
    assert diff <= TOLERANCE, f"{what}: max |ours - keras| = {diff:.3g} > {TOLERANCE}"
    return diff


def assert_keras_holds(model, expected: list[np.ndarray], what: str) -> None:
    """Keras really loaded the file: every weight equals the written array, in order."""
    got = [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]
    assert len(got) == len(expected), f"{what}: Keras has {len(got)} weights, the file {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape, f"{what}: weight {i} shape {g.shape} vs {e.shape}"
        assert np.array_equal(g, e), f"{what}: weight {i} ({model.weights[i].path}) was not loaded"


# ---------------------------------------------------------------------------------------------
# Our network -> Keras-2 HDF5 file -> Keras 3.


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture_matches_keras(arch, tmp_path):
    input_shape, layers = ARCHITECTURES[arch]
    rng = np.random.default_rng(sorted(ARCHITECTURES).index(arch))
    net = build_network(layers, input_shape, where=arch)
    randomize(net, rng)
    path = tmp_path / "weights.hdf5"
    write_network_weights(path, net)
    ours_weights = net.get_keras_weights()
    assert all(np.array_equal(a, b) for a, b in zip(read_weights(path), ours_weights, strict=True))

    model = keras_model(layers, input_shape)
    before = [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]
    model.load_weights(str(path))
    assert_keras_holds(model, ours_weights, arch)
    assert not all(np.array_equal(a, b) for a, b in zip(before, ours_weights)), "loading changed nothing"
    assert model.output_shape[1:] == tuple(net.output_shapes[-1])

    x = random_inputs(input_shape, rng)
    assert_close(ours_logits(net, x), keras_logits(model, x), arch)


def test_write_model_files_load_in_keras(tmp_path):
    input_shape, layers = ARCHITECTURES["conv_bn_maxpool_flatten"]
    rng = np.random.default_rng(100)
    net, initial = build_network(layers, input_shape), build_network(layers, input_shape)
    randomize(net, rng)
    randomize(initial, rng)
    model_dir = tmp_path / "model_7"
    write_model(model_dir, net, initial_network=initial)
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "weights.hdf5", "weights_init.hdf5"]

    config = json.loads((model_dir / "config.json").read_text())
    assert config["input_shape"] == input_shape
    x = random_inputs(config["input_shape"], rng)
    for name, ours in (("weights.hdf5", net), ("weights_init.hdf5", initial)):
        model = keras_model(config["model_config"], config["input_shape"])
        model.load_weights(str(model_dir / name))
        assert_keras_holds(model, ours.get_keras_weights(), name)
        assert_close(ours_logits(ours, x), keras_logits(model, x), f"write_model {name}")
    # The two files are different models (as in PGDL: trained vs initial weights).
    assert not np.allclose(ours_logits(net, x), ours_logits(initial, x))


# ---------------------------------------------------------------------------------------------
# Keras 3 -> legacy HDF5 file -> our network.


def _keras_randomize(model, rng: np.random.Generator) -> list[np.ndarray]:
    arrays = []
    for layer in model.layers:
        for w in layer.weights:
            arrays.append(random_weight(w.path.split("/")[-1], tuple(w.shape), rng))
    model.set_weights(arrays)
    return arrays


def _save_weights_only(model, path: Path) -> None:
    """A weights-only legacy file, the layout of PGDL's weights.hdf5 (Keras 3 keeps the writer)."""
    h5py = pytest.importorskip("h5py")
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    with h5py.File(path, "w") as f:
        legacy.save_weights_to_hdf5_group(f, model)


@pytest.mark.parametrize("form", ["full_model_h5", "weights_only_h5"])
@pytest.mark.parametrize("arch", ["conv_bn_maxpool_flatten", "dense_on_image_gmp", "mlp"])
def test_keras_saved_legacy_h5_loads_into_ours(arch, form, tmp_path):
    input_shape, layers = ARCHITECTURES[arch]
    rng = np.random.default_rng(200 + sorted(ARCHITECTURES).index(arch))
    model = keras_model(layers, input_shape)
    arrays = _keras_randomize(model, rng)
    path = tmp_path / "keras3.h5"
    if form == "full_model_h5":
        model.save(str(path))  # legacy HDF5 model file: the weights sit under "model_weights"
    else:
        _save_weights_only(model, path)

    net = build_network(layers, input_shape)
    load_network_weights(net, path)
    assert all(np.array_equal(a, b) for a, b in zip(net.get_keras_weights(), arrays, strict=True))
    x = random_inputs(input_shape, rng)
    assert_close(ours_logits(net, x), keras_logits(model, x), f"{arch} from Keras 3 {form}")


# ---------------------------------------------------------------------------------------------
# Single layers: every activation name, ReLU options, average pooling with "same".


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_keras(name):
    rng = np.random.default_rng(300)
    cases = [
        ([5, 6, 4], [{"layer_name": "Activation", "activation": name}]),
        ([7], [{"layer_name": "Dense", "units": 6, "activation": name}]),
        ([6, 5, 3], [{"layer_name": "Conv2D", "filters": 4, "kernel_size": 2, "activation": name}]),
    ]
    for input_shape, layers in cases:
        net = build_network(layers, input_shape)
        randomize(net, rng)
        model = keras_model(layers, input_shape)
        model.set_weights(net.get_keras_weights())
        # Inputs spanning the interesting range; exp of large values would only measure float32 rounding.
        x = random_inputs(input_shape, rng, scale=0.7 if name == "exponential" else 2.0)
        assert_close(ours_logits(net, x), keras_logits(model, x), f"{name} {layers[0]['layer_name']}")


RELU_OPTIONS = [
    {},
    {"max_value": 6.0},
    {"max_value": 1.5},
    {"negative_slope": 0.3},
    {"negative_slope": 1.5},
    {"threshold": 0.5},
    {"threshold": 0.5, "max_value": 2.0},
    {"threshold": 0.5, "negative_slope": 0.1},
    {"threshold": 0.25, "negative_slope": 0.2, "max_value": 1.0},
    {"negative_slope": 0.1, "max_value": 0.5},
    {"max_value": 0.0},
]


def _relu_inputs(threshold: float) -> np.ndarray:
    rng = np.random.default_rng(400)
    x = rng.normal(0.0, 2.0, (4, 3, 5, 2)).astype(np.float32)
    x.flat[:6] = [threshold, 0.0, -0.0, 6.0, -threshold, 1.0]  # exact boundary values
    return x


@pytest.mark.parametrize("options", RELU_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_relu_layer_matches_keras(options):
    layers = [{"layer_name": "ReLU", **options}]
    x = _relu_inputs(options.get("threshold", 0.0))
    net = build_network(layers, [3, 5, 2])
    model = keras_model(layers, [3, 5, 2])
    assert_close(ours_logits(net, x), keras_logits(model, x), f"ReLU {options}")


@pytest.mark.parametrize(
    "options",
    [{"threshold": -0.5}, {"threshold": -0.5, "max_value": 2.0}, {"threshold": -0.5, "negative_slope": 0.3},
     {"threshold": -0.5, "negative_slope": 0.3, "max_value": 1.0}],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_relu_negative_threshold_matches_keras_relu_op(options):
    # Keras 2.4's ReLU layer accepted a negative threshold; the Keras 3 layer refuses it, but Keras 3's
    # relu op is the same computation as TF 2.4's K.relu, so it is the oracle here.
    x = _relu_inputs(options["threshold"])
    net = build_network([{"layer_name": "ReLU", **options}], [3, 5, 2])
    expected = keras.ops.convert_to_numpy(
        keras.activations.relu(
            x, negative_slope=options.get("negative_slope", 0.0), max_value=options.get("max_value"),
            threshold=options["threshold"],
        )
    )
    assert_close(ours_logits(net, x), np.asarray(expected), f"ReLU {options}")


def _tf_average_pool_same(x: np.ndarray, pool, strides) -> np.ndarray:
    """TensorFlow's AveragePooling2D(padding="same") on NHWC, by brute force: each window's mean over
    the real pixels it covers (padding split with the odd pixel after)."""
    n, h, w, c = x.shape
    out_h, out_w = -(-h // strides[0]), -(-w // strides[1])
    top = max((out_h - 1) * strides[0] + pool[0] - h, 0) // 2
    left = max((out_w - 1) * strides[1] + pool[1] - w, 0) // 2
    out = np.zeros((n, out_h, out_w, c), dtype=np.float64)
    for i in range(out_h):
        r0 = i * strides[0] - top
        rows = slice(max(r0, 0), min(r0 + pool[0], h))
        for j in range(out_w):
            c0 = j * strides[1] - left
            cols = slice(max(c0, 0), min(c0 + pool[1], w))
            out[:, i, j, :] = x[:, rows, cols, :].mean(axis=(1, 2))
    return out.astype(np.float32)


@pytest.mark.parametrize("size", [(7, 8), (8, 7), (9, 9), (10, 10)])
@pytest.mark.parametrize("pool,strides", [((2, 2), None), ((3, 3), None), ((3, 3), (2, 2)), ((4, 3), (3, 2)),
                                          ((3, 2), (1, 1)), ((2, 4), (2, 3))])
def test_average_pooling_same_excludes_padding(size, pool, strides):
    rng = np.random.default_rng(500)
    x = rng.normal(0.0, 1.0, (2,) + size + (3,)).astype(np.float32)
    spec = {"layer_name": "AveragePooling2D", "pool_size": list(pool), "padding": "same"}
    if strides is not None:
        spec["strides"] = list(strides)
    net = build_network([spec], list(size) + [3])
    expected = _tf_average_pool_same(x, pool, strides or pool)
    assert_close(ours_logits(net, x), expected, f"AveragePooling2D same {pool} {strides} on {size}")


@pytest.mark.parametrize("size", [(7, 8), (8, 7), (9, 9), (10, 10)])
@pytest.mark.parametrize("pool,strides", [((2, 2), None), ((3, 3), (2, 2)), ((4, 3), (3, 2)), ((3, 2), (1, 1))])
def test_max_pooling_same_matches_keras(size, pool, strides):
    rng = np.random.default_rng(600)
    x = rng.normal(0.0, 1.0, (2,) + size + (3,)).astype(np.float32) - 5.0  # negative: padding must not win
    spec = {"layer_name": "MaxPooling2D", "pool_size": list(pool), "padding": "same"}
    if strides is not None:
        spec["strides"] = list(strides)
    net = build_network([spec], list(size) + [3])
    model = keras_model([spec], list(size) + [3])
    assert_close(ours_logits(net, x), keras_logits(model, x), f"MaxPooling2D same {pool} {strides} on {size}")


# ---------------------------------------------------------------------------------------------
# The real PGDL toy task, written by Keras 2.4 (read in place: ``toy_task_path`` from conftest.py).


def test_toy_fixture_weights_give_keras_logits(toy_task_path):
    models = sorted((p.name for p in toy_task_path.glob("model_*") if p.is_dir()), key=lambda s: int(s[6:]))
    assert len(models) == 18
    rng = np.random.default_rng(700)
    seen = 0
    for model_name in models:
        model_dir = toy_task_path / model_name
        config = json.loads((model_dir / "config.json").read_text())
        x = random_inputs(config["input_shape"], rng, n=32, scale=2.0)
        for weights in ("weights.hdf5", "weights_init.hdf5"):
            path = model_dir / weights
            net = build_network(config["model_config"], config["input_shape"], where=str(model_dir))
            load_network_weights(net, path)
            model = keras_model(config["model_config"], config["input_shape"])
            model.load_weights(str(path))
            stored = [a for _, arrays in read_weight_file(path) for a in arrays]
            assert_keras_holds(model, stored, f"{model_name}/{weights}")
            assert_close(ours_logits(net, x), keras_logits(model, x), f"toy {model_name}/{weights}")
            seen += 1
    assert seen == 36


# ---------------------------------------------------------------------------------------------
# The architectures above really exercise everything the converter supports.


def test_architectures_cover_every_layer_and_option():
    from task_loaders.keras_layers import _same_padding

    specs = [(tuple(shape), layers) for shape, layers in ARCHITECTURES.values()]
    used = {spec["layer_name"] for _, layers in specs for spec in layers}
    assert used == set(SUPPORTED_LAYERS)
    assert {shape[-1] for shape, _ in specs if len(shape) == 3} >= {1, 3, 4}
    assert any(len(shape) == 1 for shape, _ in specs)

    # Walk the shapes to see which paddings occur where.
    asym_conv_sizes, activations, seen = set(), set(), set()
    for shape, layers in specs:
        net = build_network(layers, list(shape))
        shapes = [shape] + [tuple(s) for s in net.output_shapes]
        for spec, in_shape in zip(layers, shapes):
            cls = spec["layer_name"]
            if "activation" in spec:
                activations.add(spec["activation"])
            if cls == "Conv2D":
                kernel = spec["kernel_size"] if isinstance(spec["kernel_size"], list) else [spec["kernel_size"]] * 2
                strides = spec.get("strides", 1)
                strides = strides if isinstance(strides, list) else [strides] * 2
                dilation = spec.get("dilation_rate", 1)
                dilation = dilation if isinstance(dilation, list) else [dilation] * 2
                seen.add(("conv", spec.get("padding", "valid")))
                seen.add(("conv_bias", spec.get("use_bias", True)))
                if max(dilation) > 1:
                    seen.add("dilation")
                if spec.get("padding") == "same" and max(strides) == 2:
                    for axis in range(2):
                        before, after = _same_padding(int(in_shape[axis]), int(kernel[axis]), strides[axis],
                                                      dilation[axis])
                        if after != before:
                            asym_conv_sizes.add(int(in_shape[axis]) % 2)
            elif cls == "BatchNormalization":
                seen.add(("bn", spec.get("center", True), spec.get("scale", True)))
                if "epsilon" in spec:
                    seen.add("bn_epsilon")
                seen.add(("bn_rank", len(in_shape)))
            elif cls in ("MaxPooling2D", "AveragePooling2D"):
                seen.add((cls, "strides" in spec, spec.get("padding", "valid")))
            elif cls == "ZeroPadding2D":
                p = spec["padding"]
                seen.add(("zp", "int" if isinstance(p, int) else "nested" if isinstance(p[0], list) else "pair"))
            elif cls == "Dense":
                seen.add(("dense_rank", len(in_shape)))
            elif cls == "Flatten" and len(in_shape) == 3 and in_shape[0] * in_shape[1] > 1:
                seen.add("flatten_image")
            elif cls == "ReLU":
                seen.update(("relu", k) for k in spec if k != "layer_name")
    assert asym_conv_sizes == {0, 1}, "stride-2 'same' with asymmetric padding on odd and even sizes"
    expected = {("conv", "same"), ("conv", "valid"), ("conv_bias", False), ("conv_bias", True), "dilation",
                ("bn", True, True), ("bn", True, False), ("bn", False, True), ("bn", False, False), "bn_epsilon",
                ("bn_rank", 1), ("bn_rank", 3), ("zp", "int"), ("zp", "pair"), ("zp", "nested"),
                ("dense_rank", 1), ("dense_rank", 3), "flatten_image",
                ("relu", "max_value"), ("relu", "negative_slope"), ("relu", "threshold")}
    for cls in ("MaxPooling2D", "AveragePooling2D"):
        expected |= {(cls, False, "valid"), (cls, True, "valid"), (cls, True, "same")}
    assert expected <= seen, sorted(map(str, expected - seen))
    assert len(activations & set(ACTIVATIONS)) >= 10
