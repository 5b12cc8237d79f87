"""The reference family (measures.families.reference) and its statistics, against independent computations.

BatchNorm folding against the unfolded network's outputs, spectral norms against numpy's SVD, the FFT
spectral norm against the explicit circular-convolution operator, the margin order statistic and the
bounds by hand, the sigma search against a plain (shortcut-free) bisection, and each family measure
against its formula evaluated with numpy on the network's own arrays. Model-by-model agreement with
the reference code itself is in docs/reference_measures.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import measures
from measures import ModelView
from measures.stats.batchnorm_folding import reparametrized
from measures.stats.margins import kth_smallest_margin
from measures.stats.norms import fft_spectral_norm, path_norm_value, squared_parameter_output
from measures.stats.perturbation import (pacbayes_bound, pacbayes_magnitude_bound, reference_noise,
                                         reference_sigma)
from task_loaders import architectures
from task_loaders.keras_layers import BatchNormalization, build_network


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: these tiny networks run slower on several threads of a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _randomize(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for m in net.modules():
            if isinstance(m, BatchNormalization):
                m.moving_mean.copy_(torch.randn(m.moving_mean.shape, generator=g))
                m.moving_variance.copy_(torch.rand(m.moving_variance.shape, generator=g) + 0.5)
    return net


def _net(batchnorm=True, seed=0):
    layers = architectures.vgg((8, 8, 1), 4, width=3, depth=1, dense_units=5, batchnorm=batchnorm)
    return _randomize(build_network(layers, (8, 8, 1)), seed)


@pytest.fixture(scope="module")
def view():
    torch.manual_seed(1)
    x = torch.randn(120, 1, 8, 8)
    net, init = _net(True, 0), _net(True, 1)
    with torch.no_grad():
        y = net(x).argmax(1)
    y[::9] = (y[::9] + 1) % 4  # some errors
    return ModelView(net, (x, y), initial_network=init, num_classes=4, model_id="m", task_name="t", sample_size=120)


def _bns(net):
    return [m for m in net.modules() if isinstance(m, BatchNormalization)]


def test_reparametrized_folds_batchnorm_into_the_weights_and_resets_it():
    net = _net(True)
    x = torch.randn(7, 1, 8, 8)
    copy = reparametrized(net)
    for bn in _bns(copy):
        assert torch.all(bn.gamma == 1) and torch.all(bn.beta == 0)
        assert torch.all(bn.moving_mean == 0) and torch.all(bn.moving_variance == 1)
    with torch.no_grad():
        for bn in _bns(copy):  # an exact identity instead of x / sqrt(1 + eps): the folded layers alone
            bn.moving_variance.fill_(1.0 - bn.epsilon)
        assert torch.allclose(copy(x), net(x), rtol=1e-4, atol=1e-5)
    assert _bns(net)[0].moving_variance.min() >= 0.5  # the original is untouched


def test_reparametrized_leaves_x_over_sqrt_one_plus_eps():
    layers = [{"layer_name": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "same"},
              {"layer_name": "BatchNormalization"}]
    net = _randomize(build_network(layers, (5, 5, 1)), 3)
    x = torch.randn(3, 1, 5, 5)
    eps = _bns(net)[0].epsilon
    with torch.no_grad():
        assert torch.allclose(reparametrized(net)(x), net(x) / math.sqrt(1 + eps), rtol=1e-5, atol=1e-6)


def test_fft_spectral_norm_is_the_circular_convolution_operator_norm():
    g = torch.Generator().manual_seed(0)
    kernel = torch.randn(2, 3, 3, 3, generator=g, dtype=torch.float64)
    h, w = 4, 5
    columns = []
    for i in range(3 * h * w):  # the operator, column by column: its image of each basis input
        e = torch.zeros(3 * h * w, dtype=torch.float64)
        e[i] = 1
        padded = F.pad(e.reshape(1, 3, h, w), (1, 1, 1, 1), mode="circular")
        columns.append(F.conv2d(padded, kernel).reshape(-1))
    operator = torch.stack(columns, 1).numpy()
    expected = np.linalg.svd(operator, compute_uv=False)[0]
    assert fft_spectral_norm(kernel.numpy(), (h, w)) == pytest.approx(expected, rel=1e-10)
    dense = np.random.default_rng(0).normal(size=(4, 6))
    assert fft_spectral_norm(dense, (h, w)) == pytest.approx(np.linalg.svd(dense, compute_uv=False)[0], rel=1e-12)


def test_kth_smallest_margin_by_hand():
    margins = np.array([5.0, -1.0, 3.0, 0.5, 2.0, 7.0, 1.0, 4.0, 6.0, 8.0, 9.0, 10.0, -2.0, 11.0, 12.0,
                        13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0])
    assert kth_smallest_margin(margins) == -1.0  # 25 margins: k = 2, the second smallest
    assert kth_smallest_margin(margins[:9]) == -1.0  # fewer than 10: k = 1, the smallest
    assert kth_smallest_margin(np.arange(100.0)[::-1]) == 9.0  # k = 10


def test_bounds_by_hand():
    v = np.array([3.0, 4.0])
    assert pacbayes_bound(v, 0.5, 100) == pytest.approx(25 / (4 * 0.25) + math.log(200) + 10)
    d = np.array([1.0, 2.0])
    eps, s = 0.1, 0.5
    num = eps**2 + (s**2 + 1) * 25 / 2
    expected = 0.25 * (math.log(num / (eps**2 + s**2 * 1)) + math.log(num / (eps**2 + s**2 * 4))) + math.log(200) + 10
    assert pacbayes_magnitude_bound(v, d, s, eps, 100) == pytest.approx(expected)


def test_reference_noise_standard_deviations():
    g = torch.Generator().manual_seed(0)
    p = torch.full((200_000,), 2.0)
    (plain,) = reference_noise([p], 0.5, g)
    assert float(plain.std()) == pytest.approx(0.25, rel=0.01)  # sigma^2, not sigma
    (mag,) = reference_noise([p], 0.5, g, magnitude_eps=0.1)
    assert float(mag.std()) == pytest.approx(0.25 * 4 + 0.01, rel=0.01)


def _plain_search(net, x, y, accuracy, generator, magnitude_eps, depth, draws):
    """Bisection on [0, 2] evaluating every perturbed network in full (no shortcut)."""
    params = list(net.parameters())
    base = [p.detach().clone() for p in params]
    lo, hi, sigma = 0.0, 2.0, 1.0
    with torch.no_grad():
        for _ in range(depth):
            sigma = (lo + hi) / 2
            accs = []
            for _ in range(draws):
                noise = reference_noise(base, sigma, generator, magnitude_eps)
                for p, b, e in zip(params, base, noise):
                    p.copy_(b + e)
                accs.append(float((net(x).argmax(1) == y).double().mean()))
            for p, b in zip(params, base):
                p.copy_(b)
            drop = abs(sum(accs) / draws - accuracy)
            if abs(drop - 0.1) < 0.01:
                break
            if drop > 0.1:
                hi = sigma
            else:
                lo = sigma
    return sigma


@pytest.mark.parametrize("magnitude_eps", [None, 1e-3])
def test_reference_sigma_shortcut_gives_the_plain_search(view, magnitude_eps):
    net = reparametrized(view.network)
    x, y = view.x_train, view.y_train
    with torch.no_grad():
        accuracy = float((net(x).argmax(1) == y).double().mean())
    got = reference_sigma(net, x, y, accuracy, torch.Generator().manual_seed(5), magnitude_eps=magnitude_eps,
                          depth=8, draws=4, batch_size=16)
    expected = _plain_search(net, x, y, accuracy, torch.Generator().manual_seed(5), magnitude_eps, 8, 4)
    assert got == expected and 0 < got < 2


def _folded_kernels(net):
    """Kernels with the following BatchNorm folded, by hand in numpy (torch layout)."""
    children = list(net.children())
    out = []
    for i, m in enumerate(children):
        layer = getattr(m, "affine", None)
        if layer is None:
            continue
        w = layer.weight.detach().double().numpy()
        nxt = children[i + 1] if i + 1 < len(children) else None
        if isinstance(nxt, BatchNormalization):
            s = nxt.gamma.detach().double().numpy() / np.sqrt(nxt.moving_variance.double().numpy() + nxt.epsilon)
            w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
        out.append(w)
    return out


def test_family_measures_follow_their_formulas(view):
    m = view.num_train
    ws, w0s = _folded_kernels(view.network), _folded_kernels(view.initial_network)
    w = np.concatenate([a.ravel() for a in ws])
    dist = np.concatenate([(a - b).ravel() for a, b in zip(ws, w0s)])
    spec2 = [np.linalg.svd(a.reshape(a.shape[0], -1), compute_uv=False)[0] ** 2 for a in ws]
    fro2 = [np.sum(a**2) for a in ws]
    d = len(ws)
    get = lambda name, **kw: measures.get(name)(view, **kw)  # noqa: E731
    assert get("ref_params") == pytest.approx(math.sqrt(w.size / m))
    assert get("ref_l2") == pytest.approx(math.sqrt(np.linalg.norm(w) / m))
    assert get("ref_l2_dist") == pytest.approx(math.sqrt(np.linalg.norm(dist) / m))
    assert get("ref_param_norm") == pytest.approx(math.sqrt(sum(fro2) / m))
    assert get("ref_log_prod_of_spec") == pytest.approx(0.5 * (sum(np.log(spec2)) - math.log(m)))
    assert get("ref_log_sum_of_fro") == pytest.approx(0.5 * (math.log(d) + sum(np.log(fro2)) / d - math.log(m)))
    assert get("ref_fro_over_spec") == pytest.approx(math.sqrt(sum(f / s for f, s in zip(fro2, spec2)) / m))
    # the margin of the reparametrized network, as the reference takes it: |k-th smallest|, k = N // 10
    with torch.no_grad():
        z = reparametrized(view.network)(view.x_train).double().numpy()
    y = view.y_train.numpy()
    true = z[np.arange(len(y)), y]
    z[np.arange(len(y)), y] = -np.inf
    gamma = abs(np.sort(true - z.max(1))[len(y) // 10 - 1])
    assert get("ref_inverse_margin") == pytest.approx(math.sqrt(1 / gamma**2 / m), rel=1e-5)
    assert get("ref_log_prod_of_fro_over_margin") == pytest.approx(
        0.5 * (sum(np.log(fro2)) - 2 * math.log(gamma) - math.log(m)), rel=1e-5)
    # PAC-Bayes bounds from the sigma the flatness measure reports
    sigma = 1 / (get("ref_pacbayes_flatness", seed=3) ** 2 * m) ** 0.5
    assert get("ref_pacbayes_init", seed=3) == pytest.approx(
        math.sqrt((dist @ dist / (4 * sigma**2) + math.log(m / sigma) + 10) / m))


def test_path_norm_conventions(view):
    """Without BatchNorm, ref_path_norm is path_norm with biases; with it, each folded BN still divides by sqrt(1+eps)."""
    plain = _net(False, 2)
    shape = (1, 8, 8)
    assert squared_parameter_output(reparametrized(plain), shape) == pytest.approx(
        path_norm_value(plain, shape, include_bias=True), rel=1e-12)
    copy = reparametrized(view.network)
    with torch.no_grad():
        for bn in _bns(copy):
            bn.moving_variance.fill_(1.0 - bn.epsilon)
    assert squared_parameter_output(copy, shape) == pytest.approx(
        path_norm_value(view.network, shape, include_bias=True), rel=1e-5)


def test_registered_in_the_reference_family():
    names = measures.select(["family:reference"])
    assert {"ref_l2", "ref_l2_dist", "ref_path_norm", "ref_pacbayes_mag_flatness", "ref_log_spec_init_main_fft"} <= set(names)
    for name in names:
        entry = measures.get(name)
        assert entry.sign == 1 and "Dziugaite" in entry.source and "Jiang" in entry.source
        assert entry.stochastic == ("n" in entry.params)  # the sample (margin, sigma search) is what they draw
    assert set(measures.select(["all"])) >= set(names) | {"weight_norm", "distance_from_init", "path_norm"}
