"""Sharpness and PAC-Bayes flatness against closed forms on linear models."""

import hashlib
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

import measures
from measures import MeasureError, ModelView
from measures.families import flatness
from task_loaders import architectures, build_network

FLATNESS_MEASURES = ["sharpness", "pacbayes_sigma"]


def _linear_net(kernel, bias):
    net = build_network([{"layer_name": "Dense", "units": kernel.shape[1]}], [kernel.shape[0]])
    net.set_keras_weights([np.asarray(kernel, dtype=np.float32), np.asarray(bias, dtype=np.float32)])
    return net


def _view(net, x, y, num_classes=2, **kwargs):
    return ModelView(net, (torch.tensor(np.asarray(x), dtype=torch.float32), torch.tensor(np.asarray(y))),
                     num_classes=num_classes, **kwargs)


# one correctly classified sample of a 2-class linear model; every weight and input entry nonzero
KERNEL = np.array([[0.8, -0.3], [-0.5, 0.6], [0.25, 0.4], [1.1, -0.7], [-0.2, -0.9]])  # (in=5, out=2)
BIAS = np.array([0.3, -0.15])
X1 = np.array([[1.0, -0.5, 2.0, 0.75, -1.5]])


def _exact(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)  # the float32 values the network holds


def test_sharpness_of_linear_model_is_the_corner_closed_form():
    kernel, bias, x = _exact(KERNEL), _exact(BIAS), _exact(X1)[0]
    z = x @ kernel + bias
    y, o = int(np.argmax(z)), int(np.argmin(z))
    margin = z[y] - z[o]
    assert 0.5 < margin < 5  # softmax not saturated in float32: the gradient signs are exact
    # in the box |nu| <= alpha |w| the margin drops by at most alpha * spread, at the corner
    # nu_iy = -alpha |W_iy| sign(x_i), nu_io = +alpha |W_io| sign(x_i), nu_by = -alpha |b_y|, nu_bo = +alpha |b_o|
    spread = np.sum((np.abs(kernel[:, y]) + np.abs(kernel[:, o])) * np.abs(x)) + abs(bias[y]) + abs(bias[o])
    alpha_star = margin / spread
    assert 1e-3 < alpha_star < 1
    view = _view(_linear_net(KERNEL, BIAS), X1, [y])
    # 30 halvings of [1e-4, 1] leave a bracket of ln(1e4) / 2**30 ~ 1e-8 in log(alpha); the remaining
    # error is the float32 evaluation of the margin at the threshold (~1e-6 relative)
    value = measures.get("sharpness")(view, iterations=30)
    assert value == pytest.approx(1 / alpha_star**2, rel=1e-4)
    # two steps already reach the corner from any starting point of the box
    assert measures.get("sharpness")(view, iterations=30, steps=2) == pytest.approx(1 / alpha_star**2, rel=1e-4)
    # a random point alone (no ascent) is less harmful than the corner: a larger admissible alpha
    assert measures.get("sharpness")(view, iterations=30, steps=0) < value * (1 - 1e-3)


def _orthogonal_samples(count, scale, margin):
    """``count`` samples x_j = scale * e_j (alternating labels) all at output margin ``margin``.

    Only W[j, y_j] = margin / scale is nonzero and b = 0, so every margin is exactly ``margin``; under
    isotropic noise of W and b sample j's margin becomes margin + scale * (u_jy - u_jo) + (u_by - u_bo)
    ~ N(margin, sigma^2 * 2 (scale^2 + 1)): the one-sample closed form, for every sample.
    """
    x = scale * np.eye(count)
    y = np.arange(count) % 2
    kernel = np.zeros((count, 2))
    kernel[np.arange(count), y] = margin / scale
    return x, y, kernel, np.zeros(2)


def test_pacbayes_sigma_of_linear_model_matches_gaussian_closed_form():
    count, scale, margin, tolerance = 200, 3.0, 1.0, 0.1
    x, y, kernel, bias = _orthogonal_samples(count, scale, margin)
    view = _view(_linear_net(kernel, bias), x, y)
    # error probability Phi(-m / (sigma s)) reaches the tolerance at sigma* = m / (s Phi^-1(1 - t))
    s = math.sqrt(2 * (scale**2 + 1))
    sigma_star = margin / (s * norm.ppf(1 - tolerance))
    value = measures.get("pacbayes_sigma")(view, draws=250, iterations=14, n=count, tolerance=tolerance,
                                           batch_size=count)
    # Monte-Carlo error: the estimated error at sigma* averages 250 draws x 200 samples, nearly independent
    # (the shared bias noise is 1/10 of each margin's variance and enters with opposite signs for the two
    # classes): std ~ sqrt(0.1 * 0.9 / 50000) = 0.0013. The error rises by phi(1.28) * 1.28 = 0.225 per unit
    # of log(sigma), so log(sigma') has std ~ 0.006 and the score 1/sigma'^2 ~ 1.2 %; 5 % is 4 standard
    # deviations (over 20 model ids: std 1.2 %, largest error 2.4 %). Bisection: 14 halvings of ln(1e5)
    # resolve log(sigma) to 7e-4.
    assert value == pytest.approx(1 / sigma_star**2, rel=0.05)


def test_pacbayes_sigma_of_one_sample_matches_closed_form_loosely():
    kernel, bias, x = _exact(KERNEL), _exact(BIAS), _exact(X1)
    z = x[0] @ kernel + bias
    y = int(np.argmax(z))
    margin = z[y] - z[1 - y]
    tolerance = 0.2
    s = math.sqrt(2 * (np.sum(x**2) + 1))
    sigma_star = margin / (s * norm.ppf(1 - tolerance))
    view = _view(_linear_net(KERNEL, BIAS), X1, [y])
    value = measures.get("pacbayes_sigma")(view, draws=1500, iterations=12, tolerance=tolerance)
    # one sample: the estimate is the 0.2-quantile of 1500 normal draws, std sqrt(0.16 / 1500) / phi(0.84)
    # = 0.037 in z, 4.4 % of z = 0.84, so ~9 % on 1/sigma^2; 30 % is over 3 standard deviations
    # (over repeats 0-19: std 7.6 %, largest error 16 %)
    assert value == pytest.approx(1 / sigma_star**2, rel=0.3)


def _small_vgg_view(batchnorm, model_id="m"):
    torch.manual_seed(0)
    net = build_network(architectures.vgg((8, 8, 1), 10, width=4, depth=1, batchnorm=batchnorm), (8, 8, 1))
    if batchnorm:
        with torch.no_grad():  # non-trivial moving statistics, which must not be perturbed or changed
            for module in net.children():
                if type(module).__name__ == "BatchNormalization":
                    module.moving_mean.uniform_(-0.1, 0.1)
                    module.moving_variance.uniform_(0.5, 2.0)
    x = torch.randn(40, 1, 8, 8)
    with torch.no_grad():
        y = net(x).argmax(1)  # 100 % accuracy: the tolerance can be broken
    y[:3] = (y[:3] + 1) % 10
    return ModelView(net, (x, y), num_classes=10, model_id=model_id, task_name="t")


@pytest.mark.parametrize("batchnorm", [False, True])
def test_network_unchanged_and_reruns_repeat(batchnorm):
    view = _small_vgg_view(batchnorm)
    before = {k: v.clone() for k, v in view.network.state_dict().items()}
    grads_before = [p.grad for p in view.network.parameters()]
    settings = {"sharpness": dict(n=30, iterations=6, steps=2), "pacbayes_sigma": dict(n=30, iterations=6, draws=3)}
    for name in FLATNESS_MEASURES:
        first = measures.get(name)(view, **settings[name])
        assert isinstance(first, float) and math.isfinite(first) and first > 0
        assert measures.get(name)(view, **settings[name]) == first  # bit-identical rerun
        again = _small_vgg_view(batchnorm)  # a fresh view of the same model
        assert measures.get(name)(again, **settings[name]) == first
    after = view.network.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert [p.grad for p in view.network.parameters()] == grads_before
    assert not view.network.training


def test_draws_are_shared_by_the_models_of_a_repeat():
    x, y, kernel, bias = _orthogonal_samples(20, 3.0, 1.0)

    def value(name, model_id, repeat=0, **params):
        view = ModelView(_linear_net(kernel, bias), (torch.tensor(x, dtype=torch.float32), torch.tensor(y)),
                         num_classes=kernel.shape[1], model_id=model_id, task_name="t", repeat=repeat)
        return measures.get(name)(view, iterations=16, **params)

    # few draws / a random point only: the value depends on the draws, which depend on the repeat, not the model id
    assert value("pacbayes_sigma", "a", draws=2) == value("pacbayes_sigma", "b", draws=2)
    assert value("pacbayes_sigma", "a", draws=2) != value("pacbayes_sigma", "a", 1, draws=2)
    assert value("pacbayes_sigma", "a", 1, draws=2) == value("pacbayes_sigma", "b", 1, draws=2)
    # sharpness: a random kernel and 20 samples labelled by it (the orthogonal one above is too flat)
    rng = np.random.default_rng(3)
    kernel, bias = rng.normal(size=(4, 3)), rng.normal(size=3) * 0.1
    x = rng.normal(size=(20, 4))
    y = np.argmax(x @ kernel + bias, axis=1)
    assert value("sharpness", "a", steps=0) == value("sharpness", "b", steps=0)
    assert value("sharpness", "a", steps=0) != value("sharpness", "a", 1, steps=0)


def _recorded_noise(monkeypatch, name, view, **params):
    """The noise the measure's first trial applies, per parameter name: the offsets it loads divided by
    the trial's scale (sigma_max = 1 for PAC-Bayes; alpha_max |w| = |w| for sharpness' random start, steps=0)."""
    loads = []
    original = flatness._Perturbed.load

    def recording(self, offsets):
        if offsets is not None:
            loads.append([o.detach().clone() for o in offsets])
        original(self, offsets)

    monkeypatch.setattr(flatness._Perturbed, "load", recording)
    measures.get(name)(view, iterations=0, **params)
    monkeypatch.undo()
    named = [(n, p.detach()) for n, p in view.network.named_parameters()]
    if name == "sharpness":
        return {n: o / w.abs() for (n, w), o in zip(named, loads[0])}
    return {n: o for (n, _), o in zip(named, loads[0])}


@pytest.mark.parametrize("name,params", [("pacbayes_sigma", dict(draws=1)), ("sharpness", dict(steps=0))])
def test_models_of_one_architecture_get_identical_noise_tensor_for_tensor(monkeypatch, name, params):
    """Common random numbers: two networks of one architecture with different weights get the same noise
    (up to the relative box of sharpness), tensor for tensor; another repeat gets other noise; a
    deeper network shares the noise of the layers it has in common (same name and shape)."""
    def view(seed, depth=1, repeat=0, model_id="m"):
        torch.manual_seed(seed)
        net = build_network(architectures.vgg((8, 8, 1), 10, width=4, depth=depth), (8, 8, 1))
        x = torch.randn(40, 1, 8, 8)
        with torch.no_grad():
            y = net(x).argmax(1)  # 100 % accuracy: the tolerance can be broken
        return ModelView(net, (x, y), num_classes=10, model_id=model_id, task_name="t", repeat=repeat)

    settings = dict(params, n=30)  # sigma_max = alpha_max = 1, the defaults
    a = _recorded_noise(monkeypatch, name, view(0, model_id="a"), **settings)
    b = _recorded_noise(monkeypatch, name, view(1, model_id="b"), **settings)
    again = _recorded_noise(monkeypatch, name, view(1, model_id="b", repeat=1), **settings)
    deeper = _recorded_noise(monkeypatch, name, view(2, depth=2, model_id="c"), **settings)
    assert a.keys() == b.keys() and len(a) > 4
    for key in a:
        finite = torch.isfinite(a[key]) & torch.isfinite(b[key])  # sharpness: a zero weight is never perturbed
        assert torch.allclose(a[key][finite], b[key][finite], rtol=1e-5, atol=1e-6), key
        assert not torch.allclose(a[key][finite], again[key][finite]), key
    shared = [k for k in a if k in deeper and a[k].shape == deeper[k].shape]
    assert shared and all(torch.allclose(a[k], deeper[k], rtol=1e-5, atol=1e-6) for k in shared)
    if name == "pacbayes_sigma":  # standard normal noise: the documented generator of each parameter's name
        key = next(iter(a))
        seed = int.from_bytes(hashlib.sha256(f"t/pacbayes_sigma/shared/draw0/{key}".encode()).digest()[:8], "little")
        expected = torch.randn(a[key].shape, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(a[key], expected)


def test_chance_level_and_search_bounds():
    view = _view(_linear_net(KERNEL, BIAS), X1, [int(np.argmin(X1[0] @ KERNEL + BIAS))])  # misclassified
    assert measures.get("sharpness")(view) == 1.0  # accuracy 0 <= tolerance: alpha' = alpha_max = 1
    assert measures.get("pacbayes_sigma")(view, sigma_max=0.5) == pytest.approx(4.0)
    good = _view(_linear_net(KERNEL, BIAS), X1, [int(np.argmax(X1[0] @ KERNEL + BIAS))])
    # a range that lies wholly below / above the threshold gives the bound that is admissible / broken
    assert measures.get("sharpness")(good, alpha_min=1e-6, alpha_max=1e-5) == pytest.approx(1e10)
    assert measures.get("sharpness")(good, alpha_min=2.0, alpha_max=3.0) == pytest.approx(0.25)
    assert measures.get("pacbayes_sigma")(good, sigma_min=1e-6, sigma_max=1e-5) == pytest.approx(1e10)
    assert measures.get("pacbayes_sigma")(good, sigma_min=10.0, sigma_max=20.0) == pytest.approx(0.01)


def test_impossible_cases_name_the_model():
    empty = ModelView(_linear_net(KERNEL, BIAS), (torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)),
                      num_classes=2, model_id="model_7")
    no_params = ModelView(build_network([{"layer_name": "Flatten"}], [2]), (torch.ones(3, 2), torch.tensor([0, 1, 0])),
                          num_classes=2, model_id="model_8")
    ok = _view(_linear_net(KERNEL, BIAS), X1, [0], model_id="model_9")
    for name in FLATNESS_MEASURES:
        with pytest.raises(MeasureError, match="model_7"):
            measures.get(name)(empty)
        with pytest.raises(MeasureError, match="model_8"):
            measures.get(name)(no_params)
        with pytest.raises(MeasureError, match="model_9"):
            measures.get(name)(ok, iterations=-1)
        with pytest.raises(MeasureError, match="model_9"):
            measures.get(name)(ok, tolerance=1.5)
        with pytest.raises(MeasureError, match="model_9"):
            measures.get(name)(ok, n=0)


def test_registered_with_sign_and_parameters():
    for name in FLATNESS_MEASURES:
        assert name in measures.available()
        m = measures.get(name)
        assert m.sign == 1
        assert "Jiang" in m.source
    assert set(measures.get("sharpness").params) == {
        "n", "tolerance", "steps", "iterations", "alpha_min", "alpha_max", "batch_size"}
    assert set(measures.get("pacbayes_sigma").params) == {
        "n", "tolerance", "draws", "iterations", "sigma_min", "sigma_max", "batch_size"}
