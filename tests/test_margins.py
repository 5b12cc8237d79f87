"""Margin measures and the Jacobian norm against values worked out by hand or with numpy."""

import math

import numpy as np
import pytest
import torch

import measures
from measures import MeasureError, ModelView
from measures.stats.margins import margin_gamma, output_margin
from task_loaders import architectures, build_network

MARGIN_MEASURES = ["inverse_margin", "spectral_margin", "jacobian_norm"]


def test_output_margin_by_hand():
    logits = np.array([
        [3.0, 1.0, 2.0],    # true 0: 3 - 2 = 1
        [0.5, -1.0, 4.0],   # true 1 (misclassified): -1 - 4 = -5
        [2.0, 2.0, 0.0],    # true 0, tie: 0
        [-3.0, -2.0, -1.0], # true 2: -1 - (-2) = 1
    ])
    labels = np.array([0, 1, 0, 2])
    np.testing.assert_allclose(output_margin(logits, labels), [1.0, -5.0, 0.0, 1.0])
    # tensors in, float64 numpy out
    out = output_margin(torch.tensor(logits, dtype=torch.float32), torch.tensor(labels))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [1.0, -5.0, 0.0, 1.0])


def _linear_net(kernel, bias):
    net = build_network([{"layer_name": "Dense", "units": kernel.shape[1]}], [kernel.shape[0]])
    net.set_keras_weights([np.asarray(kernel, dtype=np.float32), np.asarray(bias, dtype=np.float32)])
    return net


KERNEL = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, -1.0]])  # (in=2, out=3)
BIAS = np.array([0.1, 0.0, -0.2])


def _hand_margins(x, y):
    logits = x @ KERNEL + BIAS
    out = []
    for z, c in zip(logits, y):
        out.append(z[c] - max(z[j] for j in range(3) if j != c))
    return np.array(out)


def test_inverse_margin_on_hand_built_linear_model():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 1.0], [-1.0, 1.0],
                  [2.0, -1.0], [0.5, 0.5], [-2.0, 0.0], [0.0, 2.0], [1.5, -0.5], [-0.5, -1.5]])
    logits = x @ KERNEL + BIAS
    y = logits.argmax(axis=1)  # all correctly classified
    view = ModelView(_linear_net(KERNEL, BIAS), (torch.tensor(x, dtype=torch.float32), torch.tensor(y)),
                     num_classes=3)
    margins = _hand_margins(x, y)
    assert (margins > 0).all()
    gamma = np.percentile(margins, 10)
    assert measures.get("inverse_margin")(view) == pytest.approx(1 / gamma**2, rel=1e-5)
    # another percentile and a small batch size give the matching value
    gamma50 = np.percentile(margins, 50)
    assert measures.get("inverse_margin")(view, percentile=50.0, batch_size=5) == pytest.approx(1 / gamma50**2, rel=1e-5)


def test_inverse_margin_falls_back_to_correct_samples():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    logits = x @ KERNEL + BIAS
    y = logits.argmax(axis=1)
    y[[2, 3]] = (y[[2, 3]] + 1) % 3  # 2 of 5 misclassified: the 10th percentile is negative
    margins = _hand_margins(x, y)
    assert np.percentile(margins, 10) < 0
    view = ModelView(_linear_net(KERNEL, BIAS), (torch.tensor(x, dtype=torch.float32), torch.tensor(y)),
                     num_classes=3)
    gamma = np.percentile(margins[margins > 0], 10)
    assert measures.get("inverse_margin")(view) == pytest.approx(1 / gamma**2, rel=1e-5)
    with pytest.raises(ValueError, match="no sample is classified correctly"):
        margin_gamma(np.array([-1.0, 0.0, -2.0]))
    wrong = ModelView(_linear_net(KERNEL, BIAS), (torch.tensor(x, dtype=torch.float32), torch.tensor((y + 1) % 3)),
                      num_classes=3, model_id="7")  # every sample misclassified: gamma is undefined
    with pytest.raises(MeasureError, match="^model 7: no sample is classified correctly"):
        measures.get("inverse_margin")(wrong)


def test_spectral_margin_of_two_layer_mlp():
    rng = np.random.default_rng(0)
    net = build_network([{"layer_name": "Dense", "units": 6, "activation": "relu"},
                         {"layer_name": "Dense", "units": 4}], [3])
    k1, b1 = rng.normal(size=(3, 6)), rng.normal(size=6) * 0.1
    k2, b2 = rng.normal(size=(6, 4)), rng.normal(size=4) * 0.1
    net.set_keras_weights([a.astype(np.float32) for a in (k1, b1, k2, b2)])
    k1, b1, k2, b2 = (a.astype(np.float32).astype(np.float64) for a in (k1, b1, k2, b2))
    x = rng.normal(size=(30, 3))
    logits = np.maximum(x @ k1 + b1, 0) @ k2 + b2
    y = logits.argmax(axis=1)
    y[:2] = (y[:2] + 1) % 4  # a few misclassified: 10th percentile still computed over all samples
    view = ModelView(net, (torch.tensor(x, dtype=torch.float32), torch.tensor(y)), num_classes=4)
    margins = np.array([z[c] - np.max(np.delete(z, c)) for z, c in zip(logits, y)])
    gamma = np.percentile(margins, 10)
    if gamma <= 0:
        gamma = np.percentile(margins[margins > 0], 10)
    expected = math.log(np.linalg.norm(k1, ord=2) ** 2 * np.linalg.norm(k2, ord=2) ** 2 / gamma**2)
    assert measures.get("spectral_margin")(view) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_view_weight_matrices_fold_batchnorm():
    net = build_network(architectures.vgg((8, 8, 1), 10, width=4, depth=1, batchnorm=True), (8, 8, 1))
    rng = np.random.default_rng(1)
    # set the first BatchNorm's statistics by hand
    bn = [m for m in net.children() if type(m).__name__ == "BatchNormalization"][0]
    conv = [m for m in net.children() if type(m).__name__ == "Conv2D"][0]
    gamma_, var = rng.uniform(0.5, 2, size=4), rng.uniform(0.5, 2, size=4)
    with torch.no_grad():
        bn.gamma.copy_(torch.tensor(gamma_))
        bn.moving_variance.copy_(torch.tensor(var))
    mats = ModelView(net, (torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.long)), num_classes=10).weight_matrices()
    assert len(mats) == 4  # 2 convs + 2 dense, each BatchNorm folded
    w = conv.conv.weight.detach().double().numpy().reshape(4, -1)
    np.testing.assert_allclose(mats[0], w * (gamma_ / np.sqrt(var + bn.epsilon))[:, None], rtol=1e-6)


def test_jacobian_norm_of_linear_model_is_frobenius_norm():
    kernel = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
    view = ModelView(_linear_net(kernel, BIAS),
                     (torch.randn(7, 2), torch.tensor([0, 1, 2, 0, 1, 2, 0])), num_classes=3)
    expected = float(np.sum(kernel**2))  # = 15.3125, the same for every input
    assert measures.get("jacobian_norm")(view) == pytest.approx(expected, rel=1e-6)
    assert measures.get("jacobian_norm")(view, batch_size=3, n=5) == pytest.approx(expected, rel=1e-6)


def test_jacobian_norm_of_tanh_network_matches_finite_differences():
    torch.manual_seed(0)
    net = build_network([{"layer_name": "Dense", "units": 5, "activation": "tanh"},
                         {"layer_name": "Dense", "units": 3}], [4]).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    view = ModelView(net, (x, torch.tensor([0, 1, 2, 0, 1, 2])), num_classes=3)
    h = 1e-6
    total = 0.0
    with torch.no_grad():
        for xi in x:
            for d in range(4):
                e = torch.zeros(4, dtype=torch.float64)
                e[d] = h
                column = (net((xi + e)[None]) - net((xi - e)[None])) / (2 * h)
                total += float(column.square().sum())
    assert measures.get("jacobian_norm")(view, batch_size=4) == pytest.approx(total / len(x), rel=1e-7)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_all_margin_measures_run_on_vgg(batchnorm):
    torch.manual_seed(0)
    net = build_network(architectures.vgg((8, 8, 1), 10, width=4, depth=1, batchnorm=batchnorm), (8, 8, 1))
    x = torch.randn(40, 1, 8, 8)
    y = torch.arange(40) % 10
    # a net at initialization classifies ~10% correctly: label by its own predictions so margins exist
    with torch.no_grad():
        pred = net(x).argmax(1)
    y = torch.where(torch.arange(40) % 2 == 0, pred, y)
    view = ModelView(net, (x, y), num_classes=10, sample_size=30, batch_size=16)
    for name in MARGIN_MEASURES:
        m = measures.get(name)
        assert m.sign == 1
        assert "Jiang" in m.source
        value = m(view)
        assert isinstance(value, float) and math.isfinite(value), name
    assert set(measures.get("jacobian_norm").params) == {"n", "batch_size"}
    assert set(measures.get("spectral_margin").params) == {"n", "batch_size", "percentile"}
