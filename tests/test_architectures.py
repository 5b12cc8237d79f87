"""The in-house architectures (task_loaders/architectures.py): they build, their BatchNorm twins differ
only by BatchNormalization entries, and their sizes match counts worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from task_loaders.architectures import ARCHITECTURES, allconv, cnn4, nin, strip_batchnorm, vgg
from task_loaders.keras_layers import build_network, parameter_count

SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3)]  # sklearn digits, Fashion-MNIST, CIFAR-10
SMALL = {"vgg": {"width": 4}, "nin": {"width": 4}, "allconv": {"width": 4}, "cnn4": {"width": 4}}


def _configs():
    for name in ("vgg", "nin", "allconv"):
        for shape in SHAPES:
            for depth in (1, 2, 3):
                yield name, shape, {**SMALL[name], "depth": depth}
    for shape in SHAPES:
        yield "cnn4", shape, dict(SMALL["cnn4"])


CONFIGS = list(_configs())
IDS = [f"{n}-{'x'.join(map(str, s))}-{k.get('depth', 4)}" for n, s, k in CONFIGS]


def _names(layers):
    return [layer["layer_name"] for layer in layers]


def _forward(layers, shape, n=3, seed=0):
    net = build_network(layers, list(shape))
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, shape[2], shape[0], shape[1])).astype(np.float32))
    with torch.no_grad():
        return net, net(x)


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("name,shape,kwargs", CONFIGS, ids=IDS)
def test_builds_and_outputs_logits(name, shape, kwargs, batchnorm):
    layers = ARCHITECTURES[name](shape, 7, batchnorm=batchnorm, dropout=0.25, **kwargs)
    json.dumps({"model_config": layers, "input_shape": list(shape)})  # a valid config.json
    net, out = _forward(layers, shape)
    assert tuple(out.shape) == (3, 7)
    assert net.output_shapes[-1] == (7,)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name,shape,kwargs", CONFIGS, ids=IDS)
def test_batchnorm_twin_differs_only_by_batchnorm(name, shape, kwargs):
    with_bn = ARCHITECTURES[name](shape, 10, batchnorm=True, dropout=0.5, **kwargs)
    without = ARCHITECTURES[name](shape, 10, batchnorm=False, dropout=0.5, **kwargs)
    snapshot = json.dumps(with_bn)
    assert strip_batchnorm(with_bn) == without
    assert json.dumps(with_bn) == snapshot  # strip_batchnorm does not mutate its input
    assert "BatchNormalization" not in _names(without)
    # Each BatchNormalization sits between a weight layer and its ReLU.
    names = _names(with_bn)
    for i, n in enumerate(names):
        if n == "BatchNormalization":
            assert names[i - 1] in ("Conv2D", "Dense") and names[i + 1] == "Activation"


@pytest.mark.parametrize("name,shape,kwargs", CONFIGS, ids=IDS)
def test_batchnorm_count_and_activation_convention(name, shape, kwargs):
    layers = ARCHITECTURES[name](shape, 10, batchnorm=True, **kwargs)
    names = _names(layers)
    weight_layers = [i for i, n in enumerate(names) if n in ("Conv2D", "Dense")]
    classifier = weight_layers[-1]  # the last Dense / final 1x1 conv: linear, not normalized
    hidden = weight_layers[:-1]
    assert names.count("BatchNormalization") == len(hidden)
    for i in hidden:
        assert "activation" not in layers[i]
        assert layers[i + 1] == {"layer_name": "BatchNormalization"}
        assert layers[i + 2] == {"layer_name": "Activation", "activation": "relu"}
    assert "activation" not in layers[classifier]
    assert names.count("Activation") == len(hidden)
    assert all(layers[i].get("use_bias", True) for i in weight_layers)
    plain = ARCHITECTURES[name](shape, 10, batchnorm=False, **kwargs)
    for i, n in enumerate(_names(plain)):
        if n in ("Conv2D", "Dense") and i < len(plain) - 2:
            assert plain[i + 1] == {"layer_name": "Activation", "activation": "relu"}


@pytest.mark.parametrize("name", ["vgg", "nin", "allconv", "cnn4"])
def test_identity_batchnorm_reproduces_the_twin(name):
    """With BatchNorm set to the identity, the BN model computes exactly what its twin computes."""
    shape = (8, 8, 1)
    kwargs = dict(SMALL[name], **({} if name == "cnn4" else {"depth": 2}))
    net_bn = build_network(ARCHITECTURES[name](shape, 5, batchnorm=True, **kwargs), list(shape))
    net = build_network(ARCHITECTURES[name](shape, 5, batchnorm=False, **kwargs), list(shape))
    twin_weights = net.get_keras_weights()
    it = iter(twin_weights)
    weights = []
    for _, module in net_bn.named_children():
        shapes = module.keras_weight_shapes()
        if module.keras_class == "BatchNormalization":
            (c,) = shapes[0]
            eps = module.epsilon
            weights += [np.ones(c), np.zeros(c), np.zeros(c), np.full(c, 1.0 - eps)]  # (x - 0) / sqrt(1) * 1 + 0
        else:
            weights += [next(it) for _ in shapes]
    assert next(it, None) is None
    net_bn.set_keras_weights(weights)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((4, 1, 8, 8)).astype(np.float32))
    with torch.no_grad():
        torch.testing.assert_close(net_bn(x), net(x), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Parameter counts, worked out by hand: Conv k x k: k*k*in*out + out; Dense: in*out + out;
# BatchNormalization: 4 per channel (gamma, beta, moving mean, moving variance).


def test_cnn4_parameter_count_by_hand():
    # width 4 on 8x8x1, 10 classes: 8x8 -> pool -> 4x4 -> pool -> 2x2, Flatten 2*2*8 = 32.
    conv1 = 3 * 3 * 1 * 4 + 4  # 40
    conv2 = 3 * 3 * 4 * 4 + 4  # 148
    conv3 = 3 * 3 * 4 * 8 + 8  # 296
    conv4 = 3 * 3 * 8 * 8 + 8  # 584
    dense = 32 * 10 + 10  # 330
    plain = conv1 + conv2 + conv3 + conv4 + dense
    assert plain == 1398
    bn = 4 * (4 + 4 + 8 + 8)
    assert parameter_count(cnn4((8, 8, 1), 10, width=4), [8, 8, 1]) == plain
    assert parameter_count(cnn4((8, 8, 1), 10, width=4, batchnorm=True), [8, 8, 1]) == plain + bn == 1494
    # and on 28x28x1: 28 -> 14 -> 7, Flatten 7*7*8 = 392
    assert parameter_count(cnn4((28, 28, 1), 10, width=4), [28, 28, 1]) == 40 + 148 + 296 + 584 + 392 * 10 + 10


def test_vgg_parameter_count_by_hand():
    # width 2, depth 2, one dense layer of 4*2 = 8 units, on 8x8x1, 3 classes.
    # block 1 (2 filters): 8x8 -> pool 4x4; block 2 (4 filters): 4x4 -> pool 2x2; Flatten 2*2*4 = 16.
    convs = (3 * 3 * 1 * 2 + 2) + (3 * 3 * 2 * 2 + 2) + (3 * 3 * 2 * 4 + 4) + (3 * 3 * 4 * 4 + 4)  # 20+38+76+148
    dense = (16 * 8 + 8) + (8 * 3 + 3)  # 136 + 27
    assert convs + dense == 445
    layers = vgg((8, 8, 1), 3, width=2, depth=2)
    assert parameter_count(layers, [8, 8, 1]) == 445
    bn = 4 * (2 + 2 + 4 + 4 + 8)
    assert parameter_count(vgg((8, 8, 1), 3, width=2, depth=2, batchnorm=True), [8, 8, 1]) == 445 + bn == 525
    # two dense layers of 5 units, 32x32x3, depth 1 (2 filters): 32 -> 16, Flatten 16*16*2 = 512
    layers = vgg((32, 32, 3), 10, width=2, depth=1, dense_layers=2, dense_units=5)
    expected = (3 * 3 * 3 * 2 + 2) + (3 * 3 * 2 * 2 + 2) + (512 * 5 + 5) + (5 * 5 + 5) + (5 * 10 + 10)
    assert parameter_count(layers, [32, 32, 3]) == expected == 2749  # 56 + 38 + 2565 + 30 + 60


def test_nin_and_allconv_parameter_counts_by_hand():
    # nin width 4, depth 2 on 8x8x3, 5 classes
    block1 = (3 * 3 * 3 * 4 + 4) + 2 * (1 * 1 * 4 * 4 + 4)  # 112 + 40
    block2 = (3 * 3 * 4 * 4 + 4) + 2 * (1 * 1 * 4 * 4 + 4)  # 148 + 40
    head = 1 * 1 * 4 * 5 + 5  # 25
    assert block1 + block2 + head == 365
    assert parameter_count(nin((8, 8, 3), 5, width=4, depth=2), [8, 8, 3]) == 365
    assert parameter_count(nin((8, 8, 3), 5, width=4, depth=2, batchnorm=True), [8, 8, 3]) == 365 + 4 * 4 * 6
    # allconv width 4, depth 3 on 8x8x1, 10 classes
    expected = (3 * 3 * 1 * 4 + 4) + 2 * (3 * 3 * 4 * 4 + 4) + (4 * 10 + 10)  # 40 + 296 + 50
    assert parameter_count(allconv((8, 8, 1), 10, width=4, depth=3), [8, 8, 1]) == expected == 386


# --------------------------------------------------------------------------------------------
# Structure


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("width", [3, 16])
def test_vgg_block_widths(width, depth):
    layers = vgg((32, 32, 3), 10, width=width, depth=depth)
    filters = [layer["filters"] for layer in layers if layer["layer_name"] == "Conv2D"]
    assert filters == [width * 2**i for i in range(depth) for _ in range(2)]
    assert filters[-1] == width * 2 ** (depth - 1)
    assert all(layer["kernel_size"] == 3 and layer["padding"] == "same" for layer in layers if layer["layer_name"] == "Conv2D")
    dense = [layer["units"] for layer in layers if layer["layer_name"] == "Dense"]
    assert dense == [4 * width, 10]


def test_vgg_pooling_stops_at_one_pixel():
    # 8x8 allows three 2x2 poolings (8 -> 4 -> 2 -> 1); a fourth block keeps 1x1.
    layers = vgg((8, 8, 1), 10, width=2, depth=4)
    assert _names(layers).count("MaxPooling2D") == 3
    net = build_network(layers, [8, 8, 1])
    assert net.output_shapes[_names(layers).index("Flatten")] == (1 * 1 * 16,)
    # Fashion-MNIST: 28 -> 14 -> 7 -> 3
    layers = vgg((28, 28, 1), 10, width=2, depth=3)
    net = build_network(layers, [28, 28, 1])
    assert net.output_shapes[_names(layers).index("Flatten")] == (3 * 3 * 8,)
    assert parameter_count(vgg((8, 8, 1), 10, width=2, depth=1, dense_layers=0), [8, 8, 1]) == 20 + 38 + 4 * 4 * 2 * 10 + 10


def test_nin_structure():
    layers = nin((32, 32, 3), 10, width=8, depth=3, dropout=0.5)
    convs = [layer for layer in layers if layer["layer_name"] == "Conv2D"]
    assert [c["kernel_size"] for c in convs] == [3, 1, 1] * 3 + [1]
    assert [c["filters"] for c in convs] == [8] * 9 + [10]
    names = _names(layers)
    assert names.count("MaxPooling2D") == 2 and names.count("Dropout") == 2
    assert names[-2:] == ["Conv2D", "GlobalAveragePooling2D"]
    for i, n in enumerate(names):
        if n == "Dropout":
            assert names[i - 1] == "MaxPooling2D"
    net = build_network(layers, [32, 32, 3])
    assert net.output_shapes[-2] == (8, 8, 10)  # 32 -> 16 -> 8 before the global pooling


def test_allconv_structure():
    layers = allconv((32, 32, 3), 10, width=8, depth=5)
    convs = [layer for layer in layers if layer["layer_name"] == "Conv2D"]
    assert [c.get("strides", 1) for c in convs] == [1, 2, 1, 2, 1, 1]
    assert [c["kernel_size"] for c in convs] == [3] * 5 + [1]
    assert [c["filters"] for c in convs] == [8] * 5 + [10]
    net = build_network(layers, [32, 32, 3])
    assert net.output_shapes[-2] == (8, 8, 10)  # two stride-2 convs: 32 -> 16 -> 8


def test_cnn4_structure():
    layers = cnn4((28, 28, 1), 10, width=6)
    convs = [layer for layer in layers if layer["layer_name"] == "Conv2D"]
    assert [c["filters"] for c in convs] == [6, 6, 12, 12]
    names = _names(layers)
    assert names.count("MaxPooling2D") == 2
    assert names[-2:] == ["Flatten", "Dense"] and layers[-1]["units"] == 10
    # the pools follow the 2nd and the 4th conv's activation
    conv_at = [i for i, n in enumerate(names) if n == "Conv2D"]
    pool_at = [i for i, n in enumerate(names) if n == "MaxPooling2D"]
    assert pool_at == [conv_at[1] + 2, conv_at[3] + 2]
    net = build_network(layers, [28, 28, 1])
    assert net.output_shapes[-2] == (7 * 7 * 12,)
    # a 2x2 input pools once (2 -> 1), then keeps 1x1
    assert _names(cnn4((2, 2, 1), 3, width=2)).count("MaxPooling2D") == 1


@pytest.mark.parametrize("name,shape,kwargs", CONFIGS, ids=IDS)
def test_dropout_present_iff_positive(name, shape, kwargs):
    without = _names(ARCHITECTURES[name](shape, 10, dropout=0.0, **kwargs))
    with_dropout = ARCHITECTURES[name](shape, 10, dropout=0.3, **kwargs)
    assert "Dropout" not in without
    rates = [layer["rate"] for layer in with_dropout if layer["layer_name"] == "Dropout"]
    if name == "nin" and kwargs["depth"] == 1:
        assert rates == []  # documented: a single NiN block has no pooling, hence no dropout site
    else:
        assert rates and all(r == 0.3 for r in rates)
    expected = {
        "vgg": 1,  # one hidden dense layer
        "nin": kwargs.get("depth", 1) - 1,
        "allconv": kwargs.get("depth"),
        "cnn4": 2,
    }[name]
    assert len(rates) == expected
    # Dropout only adds layers: removing it gives the dropout-free list back.
    assert [layer for layer in with_dropout if layer["layer_name"] != "Dropout"] == ARCHITECTURES[name](shape, 10, **kwargs)


def test_vgg_dropout_follows_each_hidden_dense():
    names = _names(vgg((8, 8, 1), 10, width=2, depth=1, dense_layers=2, dropout=0.5, batchnorm=True))
    assert names[names.index("Flatten"):] == [
        "Flatten",
        "Dense", "BatchNormalization", "Activation", "Dropout",
        "Dense", "BatchNormalization", "Activation", "Dropout",
        "Dense",
    ]


def test_fresh_lists_every_call():
    a = vgg((8, 8, 1), 10)
    a[0]["filters"] = 999
    assert vgg((8, 8, 1), 10)[0]["filters"] == 16
    assert set(ARCHITECTURES) == {"vgg", "nin", "allconv", "cnn4", "mlp", "vgg16"}
    assert ARCHITECTURES["cnn4"] is cnn4


# --------------------------------------------------------------------------------------------
# Argument checks


@pytest.mark.parametrize(
    "name,kwargs,argument",
    [
        ("vgg", {"width": 0}, "width"),
        ("vgg", {"width": 2.5}, "width"),
        ("vgg", {"depth": 0}, "depth"),
        ("vgg", {"dense_layers": -1}, "dense_layers"),
        ("vgg", {"dense_units": 0}, "dense_units"),
        ("vgg", {"dropout": 1.0}, "dropout"),
        ("vgg", {"dropout": -0.1}, "dropout"),
        ("nin", {"dropout": float("nan")}, "dropout"),
        ("nin", {"width": True}, "width"),
        ("nin", {"depth": "2"}, "depth"),
        ("allconv", {"depth": -3}, "depth"),
        ("allconv", {"batchnorm": "yes"}, "batchnorm"),
        ("cnn4", {"width": -1}, "width"),
        ("cnn4", {"dropout": "0.5"}, "dropout"),
    ],
)
def test_bad_arguments_name_the_argument(name, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        ARCHITECTURES[name]((8, 8, 1), 10, **kwargs)


@pytest.mark.parametrize("name", ["vgg", "nin", "allconv", "cnn4"])
@pytest.mark.parametrize("input_shape", [(8, 8), (8, 8, 1, 1), (0, 8, 1), (8, 8, 1.5), "881", None])
def test_bad_input_shape(name, input_shape):
    with pytest.raises(ValueError, match="input_shape"):
        ARCHITECTURES[name](input_shape, 10)


@pytest.mark.parametrize("name", ["vgg", "nin", "allconv", "cnn4"])
@pytest.mark.parametrize("num_classes", [0, -2, 2.0, None])
def test_bad_num_classes(name, num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        ARCHITECTURES[name]((8, 8, 1), num_classes)


def test_depth_that_does_not_fit_is_refused():
    # 8x8 allows three 2x2 poolings: nin depth 4 fits (3 poolings), depth 5 does not.
    build_network(nin((8, 8, 1), 10, width=2, depth=4), [8, 8, 1])
    with pytest.raises(ValueError, match="depth=5"):
        nin((8, 8, 1), 10, width=2, depth=5)
    # 8x8 allows three stride-2 convs (8 -> 4 -> 2 -> 1): allconv depth 7 fits, depth 8 does not.
    build_network(allconv((8, 8, 1), 10, width=2, depth=7), [8, 8, 1])
    with pytest.raises(ValueError, match="depth=8"):
        allconv((8, 8, 1), 10, width=2, depth=8)
    # a 1-pixel-wide input cannot pool at all
    with pytest.raises(ValueError, match="depth"):
        nin((1, 8, 1), 10, depth=2)
    build_network(vgg((1, 8, 1), 10, width=2, depth=2), [1, 8, 1])  # vgg skips the pooling instead


def test_numpy_integers_and_bools_are_accepted():
    layers = vgg(np.array([8, 8, 1]), np.int64(10), width=np.int32(2), depth=np.int64(1), batchnorm=np.bool_(True))
    assert json.dumps(layers)  # converted to plain Python ints
    assert "BatchNormalization" in _names(layers)


def test_strip_batchnorm_rejects_non_lists():
    with pytest.raises(ValueError, match="layers"):
        strip_batchnorm("Conv2D")
    with pytest.raises(ValueError, match="layers"):
        strip_batchnorm([{"filters": 3}])
    assert strip_batchnorm([]) == []


def test_vgg16_parameter_count_by_hand_and_logits():
    from task_loaders.architectures import vgg16

    # width 2 on 32x32x3: convs 2,2 | 4,4 | 8,8,8 | 16,16,16 | 16,16,16 with 5 poolings to 1x1, dense 16, 16
    channels = [3, 2, 2, 4, 4, 8, 8, 8, 16, 16, 16, 16, 16, 16]
    convs = sum(9 * a * b + b for a, b in zip(channels[:-1], channels[1:]))
    dense = (16 * 16 + 16) + (16 * 16 + 16) + (16 * 10 + 10)
    layers = vgg16((32, 32, 3), 10, width=2)
    assert _names(layers).count("Conv2D") == 13 and _names(layers).count("Dense") == 3
    assert parameter_count(layers, [32, 32, 3]) == convs + dense
    net, logits = _forward(layers, (32, 32, 3))
    assert logits.shape == (3, 10)
    assert strip_batchnorm(vgg16((32, 32, 3), 10, width=2, batchnorm=True)) == layers


def test_mlp_layers_and_parameter_count():
    from task_loaders.architectures import mlp

    layers = mlp((28, 28, 1), 10, width=5, depth=2, dropout=0.5)
    assert _names(layers) == ["Flatten", "Dense", "Activation", "Dropout", "Dense", "Activation", "Dropout", "Dense"]
    assert parameter_count(layers, [28, 28, 1]) == (784 * 5 + 5) + (5 * 5 + 5) + (5 * 10 + 10)
    with pytest.raises(ValueError, match="width"):
        mlp((28, 28, 1), 10, width=0)
