"""The margin family and robustness to augmentations against values worked out by hand, numpy and scipy."""

import importlib.util
import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch

import measures
from measures import MeasureError, ModelView
from measures.stats.augmentations import (
    ZOOM_SCALES, adjust_contrast, adjust_hue, adjust_saturation, crop_and_resize, crop_resize, erase, erase_boxes,
    hflip, mixup_partners, natekar_augment, natekar_draws, robustness_augmentations, saturate, sobel_dx,
)
from measures.families.winners.augmented import aithal_seed
from measures.families.winners.pgdl_conventions import authors_seed
from measures.stats.tf_random import eager_op_seeds, eager_uniforms
from task_loaders import build_network

# ---------------------------------------------------------------------------------------------
# A network whose margins have a closed form: 1x1 Conv2D + relu -> Flatten -> linear Dense.
# h = relu(1x1 conv of x), z = flatten_nhwc(h) @ K + b, so grad_h z_k is column k of K and
# margin = (z_y - z_j) / ||K[:, y] - K[:, j]||.

C_IN, FILTERS, SIDE, CLASSES = 3, 3, 4, 3


def _closed_form_net(seed=0):
    rng = np.random.default_rng(seed)
    layers = [{"layer_name": "Conv2D", "filters": FILTERS, "kernel_size": 1, "activation": "relu"},
              {"layer_name": "Flatten"},
              {"layer_name": "Dense", "units": CLASSES}]
    net = build_network(layers, (SIDE, SIDE, C_IN))
    weights = [rng.normal(size=(1, 1, C_IN, FILTERS)), rng.normal(size=FILTERS) * 0.1,
               rng.normal(size=(SIDE * SIDE * FILTERS, CLASSES)), rng.normal(size=CLASSES) * 0.1]
    weights = [w.astype(np.float32) for w in weights]
    net.set_keras_weights(weights)
    return net, [w.astype(np.float64) for w in weights]


def _hidden(x, weights):
    """h in NHWC, computed with numpy."""
    k, b = weights[0][0, 0], weights[1]  # (C_in, F), (F,)
    return np.maximum(np.einsum("nchw,cf->nhwf", x, k) + b, 0.0)


def _logits(x, weights):
    h = _hidden(x, weights)
    return h.reshape(len(x), -1) @ weights[2] + weights[3]


def _hand_score(x, y, weights):
    """The authors' score with numpy/scipy: -mean((z_i - z_j) / (|K_i - K_j| + 1e-7)) / (sqrt(trim_mean var) + 1e-7)."""
    h = _hidden(x, weights).reshape(len(x), -1)
    z = _logits(x, weights)
    kernel = weights[2]
    margins = []
    for zi, c in zip(z, y):
        j = max((k for k in range(CLASSES) if k != c), key=lambda k: zi[k])
        margins.append((zi[c] - zi[j]) / (np.linalg.norm(kernel[:, c] - kernel[:, j]) + 1e-7))
    margins = np.array(margins)
    scale = math.sqrt(scipy.stats.trim_mean(np.var(h, axis=0), 0.05)) + 1e-7
    return -margins.mean() / scale, margins


def _data(n=30, seed=1, weights=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, C_IN, SIDE, SIDE)).astype(np.float32).astype(np.float64)
    y = _logits(x, weights).argmax(axis=1)
    y[:4] = (y[:4] + 1) % CLASSES  # four misclassified samples: negative margins
    return x, y


def _view(net, x, y, **kw):
    return ModelView(net, (torch.tensor(x, dtype=torch.float32), torch.tensor(y)), num_classes=CLASSES,
                     model_id="m7", task_name="t", **kw)


def test_conv_margin_matches_closed_form():
    net, w = _closed_form_net()
    x, y = _data(weights=w)
    view = _view(net, x, y)
    expected, margins = _hand_score(x, y, w)
    assert (margins < 0).sum() == 4 and (margins > 0).sum() == len(x) - 4
    # a buffer of 1 makes the shuffle the identity: the n draws are the training set in order
    got = measures.get("conv_margin")(view, n=len(x), buffer=1)
    assert got == pytest.approx(expected, rel=1e-5)
    # batch size and an explicit layer (name or index) change nothing
    assert measures.get("conv_margin")(view, n=len(x), buffer=1, batch_size=7, layer="conv2d") == pytest.approx(expected, rel=1e-5)
    assert measures.get("conv_margin")(view, n=len(x), buffer=1, layer=0) == pytest.approx(expected, rel=1e-5)
    # twice the set: every sample twice, the same mean
    assert measures.get("conv_margin")(view, n=2 * len(x), buffer=1) == pytest.approx(expected, rel=1e-5)


def test_margin_layer_is_the_first_conv_output_before_a_separate_activation():
    # Conv2D without activation, then Activation(relu): the authors read the Conv2D's output (pre-relu)
    rng = np.random.default_rng(2)
    net = build_network([{"layer_name": "Conv2D", "filters": FILTERS, "kernel_size": 1},
                         {"layer_name": "Activation", "activation": "relu"},
                         {"layer_name": "Flatten"}, {"layer_name": "Dense", "units": CLASSES}], (SIDE, SIDE, C_IN))
    k, b = rng.normal(size=(1, 1, C_IN, FILTERS)), rng.normal(size=FILTERS) * 0.1
    kd, bd = rng.normal(size=(SIDE * SIDE * FILTERS, CLASSES)), rng.normal(size=CLASSES) * 0.1
    net.set_keras_weights([a.astype(np.float32) for a in (k, b, kd, bd)])
    k, b, kd, bd = (a.astype(np.float32).astype(np.float64) for a in (k, b, kd, bd))
    x = rng.normal(size=(20, C_IN, SIDE, SIDE)).astype(np.float32).astype(np.float64)
    pre = np.einsum("nchw,cf->nhwf", x, k[0, 0]) + b  # the conv output, NHWC
    z = np.maximum(pre, 0).reshape(len(x), -1) @ kd + bd
    y = z.argmax(axis=1)
    margins = []
    for n in range(len(x)):
        j = np.argsort(-z[n], kind="stable")[1]
        grad = (kd[:, y[n]] - kd[:, j]) * (pre[n].reshape(-1) > 0)  # d(z_i - z_j)/d pre: relu' = 1 where pre > 0
        margins.append((z[n, y[n]] - z[n, j]) / (np.linalg.norm(grad) + 1e-7))
    scale = math.sqrt(scipy.stats.trim_mean(np.var(pre.reshape(len(x), -1), axis=0), 0.05)) + 1e-7
    view = _view(net, x, y)
    assert view.hidden_layers[0] == "activation"  # the old rule would have read the relu output
    assert measures.get("conv_margin")(view, n=len(x), buffer=1) == pytest.approx(-np.mean(margins) / scale, rel=1e-5)


def test_zero_gradient_gives_a_huge_margin_not_a_dropped_sample():
    net, w = _closed_form_net()
    w[2][:, 1] = w[2][:, 0]  # classes 0 and 1 share a column: their logit difference has a zero gradient
    w[3][1] = w[3][0] + 1e-3
    net.set_keras_weights([a.astype(np.float32) for a in w])
    w = [a.astype(np.float32).astype(np.float64) for a in w]
    x, _ = _data(weights=w)
    y = np.arange(len(x)) % CLASSES
    view = _view(net, x, y)
    expected, margins = _hand_score(x, y, w)
    assert len(margins) == len(x) and np.abs(margins).max() > 1e3  # (z_i - z_j) / 1e-7 for some samples
    assert measures.get("conv_margin")(view, n=len(x), buffer=1) == pytest.approx(expected, rel=1e-3)


def test_conv_margin_layer_errors():
    net = build_network([{"layer_name": "Flatten"}, {"layer_name": "Dropout", "rate": 0.1}], [4])
    view = ModelView(net, (torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])), num_classes=4, model_id="lin")
    with pytest.raises(MeasureError, match="lin: the network has no Conv2D or Dense layer"):
        measures.get("conv_margin")(view)
    net = build_network([{"layer_name": "Dense", "units": 3}], [4])
    view = ModelView(net, (torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])), num_classes=3, model_id="lin")
    with pytest.raises(MeasureError, match="nope"):
        measures.get("conv_margin")(view, layer="nope")
    with pytest.raises(MeasureError, match="out of range"):
        measures.get("conv_margin")(view, layer=5)
    # the logits layer itself (the only Dense here, the default): grad of z_i - z_j is e_i - e_j
    assert math.isfinite(measures.get("conv_margin")(view))


def test_mixup_margin_by_hand():
    net, w = _closed_form_net()
    x, y = _data(weights=w)
    view = _view(net, x, y)
    mixed = []  # a buffer of 1: the samples are the set in order
    for start in range(0, len(x), 8):  # batches of 8, partners within each batch, numpy's seed 2 in each
        xb, yb = x[start : start + 8], y[start : start + 8]
        partners = mixup_partners(yb, 2)
        mixed.append(0.5 * (xb + xb[partners]))
    expected, _ = _hand_score(np.concatenate(mixed), y, w)
    got = measures.get("mixup_margin")(view, n=len(x), buffer=1, batch_size=8)
    assert got == pytest.approx(expected, rel=1e-5)
    assert measures.get("mixup_margin")(view, n=len(x), buffer=1, batch_size=8) == got  # reruns repeat exactly


def test_mixup_partners_permute_within_classes_and_may_keep_a_sample():
    labels = np.array([0, 1, 1, 2, 2, 2, 0])
    fixed = 0
    for seed in range(300):
        partners = mixup_partners(labels, seed)
        assert sorted(partners) == list(range(7))  # a permutation
        assert (labels[partners] == labels).all()  # within classes
        fixed += int((partners == np.arange(7)).sum())
    # a uniform permutation of k has 1 fixed point on average: 3 classes -> 3 per draw
    assert 2.5 < fixed / 300 < 3.5


def test_natekar_augment_by_hand_on_grey_images():
    x = torch.tensor(np.random.default_rng(3).normal(size=(2, 1, 6, 6)))
    # u = 0.2: flipped, no zoom; brightness 0.1 * 0.2 - 0.05 = -0.03, contrast 0.7 + 0.06 = 0.76; hue/saturation: none
    f = hflip(x[:1]) - 0.03
    m = f.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(natekar_augment(x[:1], [0.2], [0]), (f - m) * 0.76 + m)
    # u = 0.9: not flipped, zoomed at ZOOM_SCALES[15] = 1.0 (the identity crop)
    g = x[1:] + 0.04
    m = g.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(natekar_augment(x[1:], [0.9], [15]), (g - m) * 0.97 + m)
    assert len(ZOOM_SCALES) == 16 and ZOOM_SCALES[0] == pytest.approx(0.85) and ZOOM_SCALES[-1] == pytest.approx(1.0)


def test_crop_and_resize_samples_a_ramp_linearly():
    # on a ramp v = column index, bilinear sampling returns the sampling position itself:
    # output column c reads column (0.5 - 0.5 s)(W - 1) + c s
    ramp = torch.arange(9, dtype=torch.float64).repeat(9, 1)[None, None]
    out = crop_and_resize(ramp, [0.85])[0, 0].numpy()
    expected = (0.5 - 0.5 * np.float32(0.85)) * 8 + np.arange(9) * np.float32(0.85)
    np.testing.assert_allclose(out, np.tile(expected, (9, 1)), rtol=1e-6)
    np.testing.assert_allclose(crop_and_resize(ramp.transpose(2, 3), [0.85])[0, 0].numpy(),
                               np.tile(expected, (9, 1)).T, rtol=1e-6)


def test_hsv_adjustments_by_hand():
    pixel = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64).reshape(1, 3, 1, 1)
    # v = 0.8, s = 0.75; saturation x 0.5 -> s = 0.375: each channel v - (v - c) * 0.5
    np.testing.assert_allclose(adjust_saturation(pixel, 0.5).flatten().numpy(), [0.5, 0.65, 0.8], rtol=1e-12)
    # x 2 -> s clipped to 1: the minimum channel goes to 0, the others v - (v - c) / 0.75
    np.testing.assert_allclose(adjust_saturation(pixel, 2.0).flatten().numpy(), [0.0, 0.4, 0.8], rtol=1e-12, atol=1e-15)
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(adjust_hue(red, 1 / 3).flatten().numpy(), [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(adjust_hue(red, -1 / 6).flatten().numpy(), [1.0, 0.0, 1.0], atol=1e-12)
    # a pixel with a non-positive maximum has no saturation: it turns grey at its maximum
    dark = torch.tensor([-0.5, -0.2, -0.9], dtype=torch.float64).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(adjust_saturation(dark, 1.5).flatten().numpy(), [-0.2] * 3)
    grey = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(adjust_hue(grey, 0.3), grey)
    torch.testing.assert_close(adjust_saturation(grey, 1.5), grey)
    x = torch.tensor(np.arange(8.0).reshape(1, 2, 2, 2))
    np.testing.assert_allclose(adjust_contrast(x, 2.0)[0, 0].numpy(), (np.arange(4.0).reshape(2, 2) - 1.5) * 2 + 1.5)


# ---------------------------------------------------------------------------------------------
# Aithal et al.'s augmentations against numpy / scipy


def test_hflip_is_numpy_flip():
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 6))
    np.testing.assert_array_equal(hflip(torch.tensor(x)).numpy(), np.flip(x, axis=-1))


def test_sobel_dx_matches_scipy_mirror():
    x = np.random.default_rng(1).normal(size=(2, 3, 7, 9))
    got = sobel_dx(torch.tensor(x)).numpy()
    expected = np.stack([[scipy.ndimage.sobel(x[n, c], axis=1, mode="mirror") for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    step = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
    step[..., 3:] = 1.0  # a vertical step of height 1: dx = 4 on both sides of it, so dx/4 + 0.5 = 1.5
    np.testing.assert_allclose((sobel_dx(step) / 4 + 0.5)[0, 0, 2].numpy(), [0.5, 0.5, 1.5, 1.5, 0.5, 0.5])


def test_saturate_on_grey_and_colour():
    grey = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(saturate(grey, 1.3), grey * 0.9999)  # rgb_to_grayscale of a grey RGB image
    pixel = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64).reshape(1, 3, 1, 1)
    torch.testing.assert_close(saturate(pixel, 0.5), adjust_saturation(pixel, 0.5))


def test_crop_resize():
    x = torch.rand(1, 2, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(crop_resize(x, 0.9), x)  # int((8 - 7.2) / 2) = 0: nothing cropped
    # 32 -> rows/cols 1..30, resized back to 32 (no padding): a ramp v = column index maps to
    # 1 + clamp((j + .5) 30/32 - .5, 0, 29)
    ramp = torch.arange(32, dtype=torch.float64).repeat(32, 1)[None, None]
    j = np.arange(32)
    expected = 1 + np.clip((j + 0.5) * 30 / 32 - 0.5, 0, 29)
    np.testing.assert_allclose(crop_resize(ramp, 0.9)[0, 0].numpy(), np.tile(expected, (32, 1)), rtol=1e-12)


def test_erase_boxes_bounds_and_erase():
    rng = np.random.RandomState(5)
    boxes = erase_boxes((4000, 1, 28, 28), rng)
    top, left, height, width = boxes.T
    # 28 x 28: low = round(sqrt(0.02 * 784 * 0.3)) = 2, up = round(sqrt(0.4 * 784 / 0.3)) = 32 -> 28
    assert height.min() == 2 and height.max() == 27 and width.min() == 2 and width.max() == 27
    assert (top >= 0).all() and (top + height <= 27).all() and (left + width <= 27).all()
    assert top.max() == 25  # 28 - 2 - 1
    x = torch.ones(2, 3, 6, 7)
    out = erase(x, [[1, 2, 3, 4], [0, 0, 1, 1]])
    assert (out[0, :, 1:4, 2:6] == 0).all() and int((out[0] == 0).sum()) == 3 * 12
    assert out[1, :, 0, 0].eq(0).all() and int((out[1] == 0).sum()) == 3
    # 1 x 1: low = 0, up = 1, so the box is empty (height 0) and the image is left as it is
    assert (erase_boxes((5, 1, 1, 1), rng)[:, 2] == 0).all()


# ---------------------------------------------------------------------------------------------
# augment_robustness on a linear model over 1x8x8 images, every step in numpy


def test_augment_robustness_by_hand():
    rng = np.random.default_rng(4)
    n, s, k = 24, 8, 3
    net = build_network([{"layer_name": "Flatten"}, {"layer_name": "Dense", "units": k}], (s, s, 1))
    kernel, bias = rng.normal(size=(s * s, k)).astype(np.float32), rng.normal(size=k).astype(np.float32)
    net.set_keras_weights([kernel, bias])
    kernel, bias = kernel.astype(np.float64), bias.astype(np.float64)
    x = rng.uniform(0, 1, size=(n, 1, s, s)).astype(np.float32).astype(np.float64)
    y = np.arange(n) % k
    view = ModelView(net, (torch.tensor(x, dtype=torch.float32), torch.tensor(y)), num_classes=k,
                     model_id="lin", task_name="t")

    def probs(images):
        z = images.reshape(len(images), -1) @ kernel + bias
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def sobel(images):
        return np.stack([[scipy.ndimage.sobel(im[0], axis=1, mode="mirror")] for im in images]) / 4 + 0.5

    def expected(n_used, batch):
        draw = np.random.RandomState(0)  # np.random.seed(0), then the authors' random_erase_np_v2 loop by hand
        total, changed = 0.0, 0
        for start in range(0, n_used, batch):
            xb = x[start : min(start + batch, n_used)]
            cut = xb.copy()  # (the saturation factors come from TensorFlow's generator: no effect on grey)
            for i in range(len(xb)):
                # 8 x 8: low = round(sqrt(0.02 * 64 * 0.3)) = 1, up = round(sqrt(0.4 * 64 / 0.3)) = 9 -> 8
                h, w = draw.randint(1, 8), draw.randint(1, 8)
                draw.randint(0, 9 - h), draw.randint(0, 9 - w)  # drawn, then overwritten
                t, l = draw.randint(0, 8 - h), draw.randint(0, 8 - w)
                cut[i, :, t : t + h, l : l + w] = 0
            flipped = xb[..., ::-1]
            augmented = [flipped, xb * 0.9999, xb, sobel(xb), xb + 0.5, flipped * 0.9999, cut]  # 8x8: no crop
            p = probs(xb)
            label = p.argmax(axis=1)
            for penalty, images in zip((6, 1, 2, 3, 1, 12, 2), augmented):
                pa = probs(images)
                for i in range(len(xb)):
                    if pa[i].argmax() == label[i]:
                        total += abs(p[i].max() - pa[i].max())
                    else:
                        total += penalty
                        changed += 1
        return -total, changed

    value, changed = expected(n, 64)
    assert 0 < changed < 7 * n  # both branches are exercised
    assert measures.get("augment_robustness")(view) == pytest.approx(value, rel=1e-5)
    value, _ = expected(20, 5)  # the first 20 images in batches of 5: four batches of erasings
    assert measures.get("augment_robustness")(view, n=20, batch_size=5) == pytest.approx(value, rel=1e-5)
    assert measures.get("augment_robustness")(view, penalties=(0,) * 7) > value
    with pytest.raises(MeasureError):
        measures.get("augment_robustness")(view, penalties=(1, 2))


def test_augment_measures_need_images():
    flat = ModelView(build_network([{"layer_name": "Dense", "units": 4, "activation": "relu"},
                                    {"layer_name": "Dense", "units": 2}], [3]),
                     (torch.randn(8, 3), torch.arange(8) % 2), num_classes=2, model_id="mlp")
    for name in ("augment_margin", "augment_robustness"):
        with pytest.raises(MeasureError, match="mlp"):
            measures.get(name)(flat)
    assert math.isfinite(measures.get("mixup_margin")(flat))


def test_augment_margin_by_hand_and_deterministic():
    net, w = _closed_form_net()
    x, y = _data(weights=w)
    view = _view(net, x, y)
    u, zoom = natekar_draws(8)  # one parameter set per batch position, TensorFlow's draws under seed 0
    augmented = np.concatenate([natekar_augment(torch.tensor(x[i : i + 8]), u[: len(x[i : i + 8])],
                                                zoom[: len(x[i : i + 8])]).numpy() for i in range(0, len(x), 8)])
    expected, _ = _hand_score(augmented, y, w)
    got = measures.get("augment_margin")(view, n=len(x), buffer=1, batch_size=8)
    assert got == pytest.approx(expected, rel=1e-4)
    assert measures.get("augment_margin")(view, n=len(x), buffer=1, batch_size=8) == got
    assert got != pytest.approx(measures.get("conv_margin")(view, n=len(x), buffer=1), rel=1e-3)


def test_margins_draw_the_same_samples_for_every_model_of_a_task():
    # two different networks on one task: the same 12 draws out of 30 (the authors' fixed seed), so equal
    # networks give equal values and the draws do not depend on the model id
    x, y = _data(weights=_closed_form_net()[1])
    a = _view(_closed_form_net(0)[0], x, y)
    b = ModelView(_closed_form_net(0)[0], (torch.tensor(x, dtype=torch.float32), torch.tensor(y)),
                  num_classes=CLASSES, model_id="another", task_name="t")
    for name in ("conv_margin", "mixup_margin", "augment_margin"):
        assert measures.get(name)(a, n=12) == measures.get(name)(b, n=12)
    # in another repeat the augmentation parameters (and samples) are others, again the same for both models
    a1, b1 = (ModelView(v.network, (v.x_train, v.y_train), num_classes=CLASSES, model_id=v.model_id, task_name="t",
                        repeat=1) for v in (a, b))
    assert natekar_draws(8, authors_seed(a1, "augment_margin/augment", 0))[0].tolist() == \
        natekar_draws(8, authors_seed(b1, "augment_margin/augment", 0))[0].tolist() != \
        natekar_draws(8, authors_seed(a, "augment_margin/augment", 0))[0].tolist()
    assert measures.get("augment_margin")(a1, n=12) == measures.get("augment_margin")(b1, n=12)
    assert measures.get("augment_margin")(a1, n=12) != measures.get("augment_margin")(a, n=12)


def test_registered_with_signs():
    names = measures.available()
    for name, sign in (("conv_margin", 1), ("mixup_margin", 1), ("augment_margin", 1), ("augment_robustness", -1)):
        assert name in names
        m = measures.get(name)
        assert m.sign == sign
        assert ("Natekar" in m.source) if name != "augment_robustness" else ("Aithal" in m.source)
    assert measures.get("conv_margin").params == {"n": 500, "layer": None, "batch_size": 50, "buffer": 5000}
    assert measures.get("augment_robustness").params["n"] == 12864
    assert measures.get("augment_robustness").params["penalties"] == (6, 1, 2, 3, 1, 12, 2)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
def test_robustness_saturations_are_the_authors_tensorflow_draws_on_rgb():
    """Aithal et al.'s x2 and x6 on an RGB batch after tf.random.set_seed(0): random_saturation of the batch, then of
    its flip, each taking the next eager op seed; the port's factors (eager_uniforms) give the same images."""
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(3).uniform(0, 1, size=(5, 6, 6, 3)).astype(np.float32)  # NHWC, as the authors
    tf.random.set_seed(0)
    x2 = tf.image.random_saturation(x, 0.6, 1.6).numpy()
    x6 = tf.image.random_saturation(tf.image.flip_left_right(x), 0.6, 1.6).numpy()
    factors = eager_uniforms(0, eager_op_seeds(0, 2), 0.6, 1.6)
    out = robustness_augmentations(torch.tensor(x).permute(0, 3, 1, 2), (float(factors[0]), float(factors[1])),
                                   np.random.RandomState(0))
    np.testing.assert_allclose(out[1].permute(0, 2, 3, 1).numpy(), x2, atol=1e-6)
    np.testing.assert_allclose(out[5].permute(0, 2, 3, 1).numpy(), x6, atol=1e-6)
    assert not np.allclose(x2, x, atol=1e-3)  # the factor does act on colour


def test_augment_robustness_draws_the_same_for_every_model_of_a_repeat():
    net = build_network([{"layer_name": "Flatten"}, {"layer_name": "Dense", "units": 3}], (8, 8, 1))
    data = (torch.rand(12, 1, 8, 8), torch.arange(12) % 3)
    views = [ModelView(net, data, num_classes=3, model_id=m, task_name="t", repeat=k) for k in (0, 1) for m in "ab"]
    seeds = [aithal_seed(v) for v in views]
    assert seeds[0] == seeds[1] == 0 and seeds[2] == seeds[3] != 0
    assert measures.get("augment_robustness")(views[0]) == measures.get("augment_robustness")(views[1])
