"""The margin family and robustness to augmentations against values worked out by hand, numpy and scipy."""

import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch

import measures
from measures import MeasureError, ModelView
from measures.augmentation import (
    center_crop_resize, cutout, hflip, jitter, mixup_partners, pad_crop, random_augment, saturate, sobel_edges,
)
from task_loaders import build_network

# ---------------------------------------------------------------------------------------------
# A network whose margins have a closed form: 1x1 Conv2D + relu -> Flatten -> linear Dense.
# h = relu(1x1 conv of x), z = flatten_nhwc(h) @ K + b, so grad_h z_k is column k of K and
# margin = (z_y - z_j) / ||K[:, y] - K[:, j]||.

C_IN, FILTERS, SIDE, CLASSES = 2, 3, 4, 3


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
    """-mean(margin) / sqrt(trimmed mean variance), all with numpy/scipy; zero-gradient samples left out."""
    h = _hidden(x, weights).reshape(len(x), -1)
    z = _logits(x, weights)
    kernel = weights[2]
    margins = []
    for zi, c in zip(z, y):
        j = max((k for k in range(CLASSES) if k != c), key=lambda k: zi[k])
        norm = np.linalg.norm(kernel[:, c] - kernel[:, j])
        if norm > 0:
            margins.append((zi[c] - zi[j]) / norm)
    margins = np.array(margins)
    scale = scipy.stats.trim_mean(np.var(h, axis=0), 0.05)
    return -margins.mean() / math.sqrt(scale), margins


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
    assert view.hidden_layers[0] == "conv2d"
    expected, margins = _hand_score(x, y, w)
    assert (margins < 0).sum() == 4 and (margins > 0).sum() == len(x) - 4
    got = measures.get("conv_margin")(view, n=len(x))
    assert got == pytest.approx(expected, rel=1e-5)
    # batch size and an explicit layer name change nothing
    assert measures.get("conv_margin")(view, n=len(x), batch_size=7, layer="conv2d") == pytest.approx(expected, rel=1e-5)


def test_conv_margin_leaves_out_zero_gradients():
    net, w = _closed_form_net()
    w[2][:, 1] = w[2][:, 0]  # classes 0 and 1 share a row: their margin has a zero gradient
    net.set_keras_weights([a.astype(np.float32) for a in w])
    x, y = _data(weights=w)
    y[:] = np.arange(len(x)) % CLASSES
    view = _view(net, x, y)
    expected, margins = _hand_score(x, y, w)
    assert len(margins) < len(x)  # some samples were left out by hand as well
    assert measures.get("conv_margin")(view, n=len(x)) == pytest.approx(expected, rel=1e-5)


def test_conv_margin_needs_a_hidden_layer():
    net = build_network([{"layer_name": "Dense", "units": 3}], [4])
    view = ModelView(net, (torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])), num_classes=3, model_id="lin")
    with pytest.raises(MeasureError, match="lin"):
        measures.get("conv_margin")(view)
    with pytest.raises(MeasureError, match="nope"):
        measures.get("conv_margin")(view, layer="nope")
    # the logits layer itself is a valid (if odd) choice: grad of z_i - z_j is e_i - e_j
    assert math.isfinite(measures.get("conv_margin")(view, layer="dense"))


def test_mixup_margin_by_hand_and_identical_classes():
    net, w = _closed_form_net()
    x, y = _data(weights=w)
    view = _view(net, x, y)
    partners = mixup_partners(y, view.rng("mixup_margin"))
    for i, p in enumerate(partners):
        assert y[p] == y[i] and p != i
    expected, _ = _hand_score(0.5 * (x + x[partners]), y, w)
    got = measures.get("mixup_margin")(view, n=len(x))
    assert got == pytest.approx(expected, rel=1e-5)
    assert measures.get("mixup_margin")(view, n=len(x)) == got  # reruns repeat exactly

    # every sample of a class identical: mixing changes nothing
    protos = np.random.default_rng(5).normal(size=(CLASSES, C_IN, SIDE, SIDE))
    labels = np.arange(12) % CLASSES
    same = _view(net, protos[labels], labels)
    assert measures.get("mixup_margin")(same, n=12) == pytest.approx(measures.get("conv_margin")(same, n=12), rel=1e-12)


def test_mixup_partners_of_a_lone_sample_is_itself():
    partners = mixup_partners(np.array([0, 1, 1, 2, 2, 2]), np.random.default_rng(0))
    assert partners[0] == 0
    assert set(partners[1:3]) == {1, 2}
    assert all(partners[i] in (3, 4, 5) and partners[i] != i for i in (3, 4, 5))


def test_augment_margin_by_hand_and_deterministic():
    net, w = _closed_form_net()
    x, y = _data(weights=w)
    view = _view(net, x, y)
    augmented = random_augment(torch.tensor(x, dtype=torch.float32), view.rng("augment_margin")).double().numpy()
    expected, _ = _hand_score(augmented, y, w)
    got = measures.get("augment_margin")(view, n=len(x))
    assert got == pytest.approx(expected, rel=1e-5)
    assert measures.get("augment_margin")(view, n=len(x)) == got
    assert got != pytest.approx(measures.get("conv_margin")(view, n=len(x)), rel=1e-3)
    flat = ModelView(build_network([{"layer_name": "Dense", "units": 4, "activation": "relu"},
                                    {"layer_name": "Dense", "units": 2}], [3]),
                     (torch.randn(8, 3), torch.arange(8) % 2), num_classes=2, model_id="mlp")
    for name in ("augment_margin", "augment_robustness"):
        with pytest.raises(MeasureError, match="mlp"):
            measures.get(name)(flat)
    assert math.isfinite(measures.get("mixup_margin")(flat))


def test_random_augment_draws():
    x = torch.rand(400, 1, 10, 10)
    rng = np.random.default_rng(3)
    out = random_augment(x, rng, flip_prob=1.0, brightness=0.0, contrast=0.0, crop_pad=0.1)
    # flipped, no jitter (up to rounding), padded by 1 pixel and cropped at random: every image is a shifted mirror
    flipped = hflip(x)
    offsets = set()
    for i in range(len(x)):
        found = [(t, l) for t in range(3) for l in range(3)
                 if torch.allclose(out[i], pad_crop(flipped[i : i + 1], (1, 1), t, l)[0], atol=1e-6)]
        assert found
        offsets.add(found[0])
    assert len(offsets) == 9  # all 9 offsets occur


# ---------------------------------------------------------------------------------------------
# The augmentation functions against numpy / scipy


def test_hflip_is_numpy_flip():
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 6))
    np.testing.assert_array_equal(hflip(torch.tensor(x)).numpy(), np.flip(x, axis=-1))


def test_sobel_edges_match_scipy_mirror():
    x = np.random.default_rng(1).normal(size=(2, 3, 7, 9))
    got = sobel_edges(torch.tensor(x)).numpy()
    expected = np.empty_like(x)
    for n in range(2):
        for c in range(3):
            gy = scipy.ndimage.sobel(x[n, c], axis=0, mode="mirror")
            gx = scipy.ndimage.sobel(x[n, c], axis=1, mode="mirror")
            expected[n, c] = np.hypot(gx, gy)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # a constant image has no edges; a vertical step of height 1 gives 4 beside it
    assert sobel_edges(torch.full((1, 1, 5, 5), 3.0)).abs().max() == 0
    step = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
    step[..., 3:] = 1.0
    np.testing.assert_allclose(sobel_edges(step)[0, 0, 2].numpy(), [0, 0, 4, 4, 0, 0])


def test_saturate_by_hand():
    pixel = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64).reshape(1, 3, 1, 1)
    g = 0.299 * 0.2 + 0.587 * 0.5 + 0.114 * 0.8
    expected = [g + 2 * (v - g) for v in (0.2, 0.5, 0.8)]
    np.testing.assert_allclose(saturate(pixel, 2.0).flatten().numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(saturate(pixel, 0.0).flatten().numpy(), [g] * 3, rtol=1e-12)
    one = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(saturate(one, 2.0), one)  # identity for one channel
    two = torch.tensor([1.0, 3.0], dtype=torch.float64).reshape(1, 2, 1, 1)
    np.testing.assert_allclose(saturate(two, 2.0).flatten().numpy(), [0.0, 4.0])  # mean 2 for 2 channels


def test_center_crop_resize():
    const = torch.full((2, 3, 32, 32), 0.7, dtype=torch.float64)
    torch.testing.assert_close(center_crop_resize(const, 0.9), const)
    x = torch.rand(1, 2, 10, 10, dtype=torch.float64)
    torch.testing.assert_close(center_crop_resize(x, 0.9), x)  # int((10 - 9) / 2) = 0: nothing cropped
    # 32 -> rows/cols 1..30 resized back: a ramp v = column index maps to 1 + clamp((j + .5) 30/32 - .5, 0, 29)
    ramp = torch.arange(32, dtype=torch.float64).repeat(32, 1)[None, None]
    j = np.arange(32)
    expected = 1 + np.clip((j + 0.5) * 30 / 32 - 0.5, 0, 29)
    out = center_crop_resize(ramp, 0.9)[0, 0].numpy()
    np.testing.assert_allclose(out, np.tile(expected, (32, 1)), rtol=1e-12)
    # 4x4 at 0.5: the central 2x2, resized with bilinear weights (align_corners=False) worked by hand
    y = np.random.default_rng(2).normal(size=(4, 4))
    m = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    got = center_crop_resize(torch.tensor(y)[None, None], 0.5)[0, 0].numpy()
    np.testing.assert_allclose(got, m @ y[1:3, 1:3] @ m.T, rtol=1e-12)


def test_cutout_zeroes_a_square():
    x = torch.ones(5, 3, 8, 10)
    tops, lefts = np.array([0, 4, 2, 1, 4]), np.array([0, 6, 3, 0, 2])
    out = cutout(x, 4, tops, lefts)
    for i in range(5):
        assert ((out[i] == 0).sum(dim=(1, 2)) == 16).all()
        assert (out[i, :, tops[i] : tops[i] + 4, lefts[i] : lefts[i] + 4] == 0).all()
    with pytest.raises(ValueError):
        cutout(x, 4, 5, 0)  # would leave the image


def test_jitter_and_pad_crop_by_hand():
    x = torch.tensor(np.arange(8.0).reshape(2, 1, 2, 2))
    out = jitter(x, [0.5, -1.0], [2.0, 1.0]).numpy()
    np.testing.assert_allclose(out[0, 0], (np.arange(4.0).reshape(2, 2) - 1.5) * 2 + 1.5 + 0.5)
    np.testing.assert_allclose(out[1, 0], np.arange(4.0, 8.0).reshape(2, 2) - 1.0)
    img = torch.tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    torch.testing.assert_close(pad_crop(img, (1, 1), 1, 1), img)
    np.testing.assert_array_equal(pad_crop(img, (1, 1), 0, 2)[0, 0].numpy(), [[0, 0, 0], [2, 3, 0], [5, 6, 0]])


# ---------------------------------------------------------------------------------------------
# augment_robustness on a linear model over 3x4x4 images, every step in numpy


def test_augment_robustness_by_hand():
    rng = np.random.default_rng(4)
    n, c, s, k = 24, 3, 4, 3
    net = build_network([{"layer_name": "Flatten"}, {"layer_name": "Dense", "units": k}], (s, s, c))
    kernel, bias = rng.normal(size=(s * s * c, k)).astype(np.float32), rng.normal(size=k).astype(np.float32)
    net.set_keras_weights([kernel, bias])
    kernel, bias = kernel.astype(np.float64), bias.astype(np.float64)
    x = rng.uniform(0, 1, size=(n, c, s, s)).astype(np.float32).astype(np.float64)
    y = np.arange(n) % k
    view = ModelView(net, (torch.tensor(x, dtype=torch.float32), torch.tensor(y)), num_classes=k,
                     model_id="lin", task_name="t")

    def probs(images):
        z = images.transpose(0, 2, 3, 1).reshape(len(images), -1) @ kernel + bias
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def sat(images):
        g = np.tensordot([0.299, 0.587, 0.114], images, axes=([0], [1]))[:, None]
        return g + 2.0 * (images - g)

    def sobel(images):
        out = np.empty_like(images)
        for i in range(len(images)):
            for ch in range(c):
                out[i, ch] = np.hypot(scipy.ndimage.sobel(images[i, ch], 0, mode="mirror"),
                                      scipy.ndimage.sobel(images[i, ch], 1, mode="mirror"))
        return out

    draw = view.rng("augment_robustness")
    tops, lefts = draw.integers(0, 3, size=n), draw.integers(0, 3, size=n)  # square of side 2 in 4x4
    cut = x.copy()
    for i in range(n):
        cut[i, :, tops[i] : tops[i] + 2, lefts[i] : lefts[i] + 2] = 0
    flipped = x[..., ::-1]
    augmented = [flipped, sat(x), x, sobel(x), x + 0.5, sat(flipped), cut]  # the 90% crop of 4x4 is x
    penalties = (6, 1, 2, 3, 1, 12, 2)
    p = probs(x)
    label = p.argmax(axis=1)
    total, changed = 0.0, 0
    for penalty, images in zip(penalties, augmented):
        pa = probs(images)
        for i in range(n):
            if pa[i].argmax() == label[i]:
                total += abs(p[i].max() - pa[i, label[i]])
            else:
                total += penalty
                changed += 1
    assert 0 < changed < 7 * n  # both branches are exercised
    assert measures.get("augment_robustness")(view) == pytest.approx(total / n, rel=1e-5)
    assert measures.get("augment_robustness")(view, batch_size=5) == pytest.approx(total / n, rel=1e-5)
    zero = measures.get("augment_robustness")(view, penalties=(0,) * 7)
    assert zero < total / n
    with pytest.raises(MeasureError):
        measures.get("augment_robustness")(view, penalties=(1, 2))


def test_registered_with_signs():
    names = measures.available()
    for name in ("conv_margin", "mixup_margin", "augment_margin", "augment_robustness"):
        assert name in names
        m = measures.get(name)
        assert m.sign == 1
        assert ("Natekar" in m.source) if name != "augment_robustness" else ("Aithal" in m.source)
    assert measures.get("conv_margin").params == {"n": 500, "layer": None, "batch_size": 256}
    assert measures.get("augment_robustness").params["n"] is None
    assert measures.get("augment_robustness").params["penalties"] == (6, 1, 2, 3, 1, 12, 2)
