"""Classic baselines (Jiang et al. 2020) against values worked out by hand or with numpy."""

import itertools
import math

import numpy as np
import pytest
import torch

import measures
from measures import ModelView
from measures.stats.batchnorm_folding import fold_batchnorm
from measures.stats.norms import frobenius_norm, path_norm_value, spectral_norm
from task_loaders import architectures, build_network

CLASSIC = ["parameter_count", "vc_bound", "log_prod_spectral", "log_sum_spectral",
           "log_prod_frobenius", "log_sum_frobenius", "path_norm"]


def _randomize_bn(net, seed=0):
    """Give every BatchNormalization non-trivial gamma, beta and moving statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.children():
            if type(m).__name__ == "BatchNormalization":
                c = m.moving_mean.numel()
                m.gamma.copy_(torch.randn(c, generator=g))
                m.beta.copy_(torch.randn(c, generator=g))
                m.moving_mean.copy_(torch.randn(c, generator=g))
                m.moving_variance.copy_(torch.rand(c, generator=g) + 0.1)
    return net


def _view(net, input_shape_nchw, n=20, classes=10):
    torch.manual_seed(0)
    x = torch.randn((n,) + tuple(input_shape_nchw))
    y = torch.arange(n) % classes
    return ModelView(net, (x, y), num_classes=classes, model_id="t")


def test_spectral_norm_of_hand_built_matrices():
    assert spectral_norm(np.diag([3.0, 1.0])) == pytest.approx(3.0)
    assert spectral_norm(np.diag([-5.0, 2.0, 0.5])) == pytest.approx(5.0)
    u, v = np.array([1.0, 2.0, 2.0]), np.array([3.0, 4.0])
    assert spectral_norm(np.outer(u, v)) == pytest.approx(3.0 * 5.0)  # |u| |v|
    m = np.random.default_rng(1).normal(size=(7, 4))
    assert spectral_norm(m) == pytest.approx(np.linalg.norm(m, ord=2))


def test_frobenius_norm_by_hand():
    assert frobenius_norm([[1.0, 2.0], [2.0, 4.0]]) == pytest.approx(5.0)  # sqrt(1 + 4 + 4 + 16)
    assert frobenius_norm(np.ones((2, 3, 3))) == pytest.approx(math.sqrt(18))


def _two_dense(w1, w2, b1=None, b2=None):
    """Dense(relu) -> Dense(linear); w given in torch layout (out, in)."""
    net = build_network([{"layer_name": "Dense", "units": w1.shape[0], "activation": "relu"},
                         {"layer_name": "Dense", "units": w2.shape[0]}], [w1.shape[1]])
    b1 = np.zeros(w1.shape[0]) if b1 is None else b1
    b2 = np.zeros(w2.shape[0]) if b2 is None else b2
    net.set_keras_weights([np.asarray(a, dtype=np.float32) for a in (w1.T, b1, w2.T, b2)])
    return net


W1 = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 1.0]])  # (hidden=3, in=2)
W2 = np.array([[2.0, 1.0, -1.0], [0.0, -3.0, 0.5]])    # (out=2, hidden=3)


def test_norm_measures_on_two_dense_layers():
    net = _two_dense(W1, W2)
    view = _view(net, (2,), classes=2)
    s1, s2 = np.linalg.norm(W1, 2), np.linalg.norm(W2, 2)
    f1, f2 = np.sqrt((W1**2).sum()), np.sqrt((W2**2).sum())
    get = measures.get
    assert get("log_prod_spectral")(view) == pytest.approx(math.log(s1**2 * s2**2), rel=1e-6)
    assert get("log_sum_spectral")(view) == pytest.approx(math.log(2 * math.sqrt(s1**2 * s2**2)), rel=1e-6)
    assert get("log_prod_frobenius")(view) == pytest.approx(math.log(f1**2 * f2**2), rel=1e-6)
    assert get("log_sum_frobenius")(view) == pytest.approx(math.log(2 * math.sqrt(f1**2 * f2**2)), rel=1e-6)
    # parameters: 3*2 + 3 + 2*3 + 2 = 17; depth 2
    assert get("parameter_count")(view) == 17.0
    assert get("vc_bound")(view) == pytest.approx(math.log(2 * 17 * math.log(17)))


def test_path_norm_of_two_layer_relu_mlp_by_hand():
    net = _two_dense(W1, W2, b1=np.array([1.0, -1.0, 2.0]), b2=np.array([0.5, 0.5]))
    # sum over paths input i -> hidden j -> output k of W1[j, i]^2 * W2[k, j]^2
    by_hand = sum(W1[j, i] ** 2 * W2[k, j] ** 2 for i, j, k in itertools.product(range(2), range(3), range(2)))
    view = _view(net, (2,), classes=2)
    assert measures.get("path_norm")(view) == pytest.approx(by_hand, rel=1e-9)
    # biases squared: a bias is a weight from a constant-1 unit
    b1, b2 = np.array([1.0, -1.0, 2.0]), np.array([0.5, 0.5])
    with_bias = sum(((W1**2) @ np.ones(2) + b1**2)[j] * W2[k, j] ** 2 for j in range(3) for k in range(2)) + (b2**2).sum()
    assert measures.get("path_norm")(view, include_bias=True) == pytest.approx(with_bias, rel=1e-9)
    # the network itself is untouched
    assert torch.allclose(net.dense.linear.weight, torch.tensor(W1, dtype=torch.float32))


def test_parameter_count_of_small_layer_list():
    layers = [{"layer_name": "Conv2D", "filters": 3, "kernel_size": 3, "padding": "same"},
              {"layer_name": "BatchNormalization"},
              {"layer_name": "Activation", "activation": "relu"},
              {"layer_name": "Flatten"},
              {"layer_name": "Dense", "units": 5}]
    net = build_network(layers, (4, 4, 2))
    # conv 3*3*2*3 + 3 = 57; BN gamma + beta 6 (moving stats not trainable); dense 4*4*3*5 + 5 = 245
    assert measures.get("parameter_count")(_view(net, (2, 4, 4), classes=5)) == 57 + 6 + 245


def _fold_check(layers, input_shape, x):
    net = _randomize_bn(build_network(layers, input_shape), seed=3)
    with torch.no_grad():
        expected = net[1](net[0](x)).to(torch.float64)  # layer then BN, eval mode
    folded = fold_batchnorm(net)
    assert len(folded) == 1
    name, w, b = folded[0]
    assert name == list(net.named_children())[0][0]
    x64 = x.to(torch.float64)
    if w.dim() == 4:
        got = torch.nn.functional.conv2d(x64, w, b, padding=net[0].conv.padding)
    else:
        got = x64 @ w.T + b
    assert (got - expected).abs().max().item() < 1e-5


def test_fold_batchnorm_conv_equivalence():
    torch.manual_seed(0)
    layers = [{"layer_name": "Conv2D", "filters": 5, "kernel_size": 3, "padding": "same"},
              {"layer_name": "BatchNormalization", "epsilon": 0.01}]
    _fold_check(layers, (6, 6, 3), torch.randn(4, 3, 6, 6))


def test_fold_batchnorm_dense_equivalence():
    torch.manual_seed(0)
    layers = [{"layer_name": "Dense", "units": 7}, {"layer_name": "BatchNormalization"}]
    _fold_check(layers, (5,), torch.randn(8, 5))


def test_fold_batchnorm_without_gamma_beta():
    torch.manual_seed(0)
    layers = [{"layer_name": "Dense", "units": 4, "use_bias": False},
              {"layer_name": "BatchNormalization", "center": False, "scale": False}]
    net = build_network(layers, (3,))
    assert net[1].gamma is None and net[1].beta is None
    with torch.no_grad():
        net[1].moving_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        net[1].moving_variance.copy_(torch.tensor([1.0, 4.0, 0.25, 2.0]))
    x = torch.randn(6, 3)
    with torch.no_grad():
        expected = net(x).to(torch.float64)
    _, w, b = fold_batchnorm(net)[0]
    assert ((x.to(torch.float64) @ w.T + b) - expected).abs().max().item() < 1e-5


def test_path_norm_folds_batchnorm():
    # Dense -> BN -> relu -> Dense: path norm equals the hand formula on the folded first layer
    layers = [{"layer_name": "Dense", "units": 3}, {"layer_name": "BatchNormalization"},
              {"layer_name": "Activation", "activation": "relu"}, {"layer_name": "Dense", "units": 2}]
    net = _randomize_bn(build_network(layers, (2,)), seed=5)
    (_, a, _), (_, c, _) = fold_batchnorm(net)
    a, c = a.numpy(), c.numpy()
    by_hand = float(((c**2) @ (a**2) @ np.ones(2)).sum())
    assert path_norm_value(net, (2,)) == pytest.approx(by_hand, rel=1e-9)


@pytest.fixture(scope="module")
def vgg_view():
    torch.manual_seed(0)
    net = _randomize_bn(build_network(architectures.vgg((8, 8, 1), 10, width=4, depth=1, batchnorm=True), (8, 8, 1)))
    return _view(net, (1, 8, 8))


@pytest.mark.parametrize("name", CLASSIC)
def test_classic_measures_run_on_vgg(vgg_view, name):
    m = measures.get(name)
    assert m.sign == 1
    assert "Jiang" in m.source
    value = m(vgg_view)
    assert isinstance(value, float) and math.isfinite(value)


def test_vgg_folding_matches_network(vgg_view):
    net = vgg_view.network
    folded = fold_batchnorm(net)
    assert [n for n, _, _ in folded] == ["conv2d", "conv2d_1", "dense", "dense_1"]
    # the folded conv reproduces conv2d -> batch_normalization
    x = vgg_view.x_train[:3]
    with torch.no_grad():
        expected = net.batch_normalization(net.conv2d(x)).to(torch.float64)
    _, w, b = folded[0]
    got = torch.nn.functional.conv2d(x.to(torch.float64), w, b, padding=1)
    assert (got - expected).abs().max().item() < 1e-5
