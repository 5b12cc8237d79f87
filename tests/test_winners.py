"""The PGDL winners' measures (DBI, LWM, DBI x LWM, VPM) against values computed independently."""

import math
from itertools import combinations

import numpy as np
import pytest
import scipy.sparse.csgraph
import torch

import measures
from measures import MeasureError, ModelView
from measures.winners import (knn_adjacency, label_variation, mixup_sample, normalized_laplacian,
                              pooled_features)
from task_loaders import architectures, build_network

WINNERS = {"dbi_first_conv": 1, "label_mixup_accuracy": -1, "dbi_times_lwm": 1, "vpm_label_variation": 1}


def _f32(a):
    """An array as the network sees it: rounded to float32, then back to float64 for the hand computation."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def _view(net, x, y, num_classes, model_id="m"):
    return ModelView(net, (torch.tensor(np.asarray(x), dtype=torch.float32), torch.tensor(np.asarray(y))),
                     num_classes=num_classes, model_id=model_id, task_name="winners-test")


def hand_dbi(f, y):
    """Davies-Bouldin from its definition: mean over classes of max_j (S_i + S_j) / |c_i - c_j|."""
    classes = sorted(set(y.tolist()))
    centroid = {c: f[y == c].mean(axis=0) for c in classes}
    spread = {c: np.mean([np.linalg.norm(row - centroid[c]) for row in f[y == c]]) for c in classes}
    total = 0.0
    for i in classes:
        total += max((spread[i] + spread[j]) / np.linalg.norm(centroid[i] - centroid[j]) for j in classes if j != i)
    return total / len(classes)


def numpy_max_pool(h, pool):
    """Max pooling, window = stride = min(pool, side), floor; pool <= 1: none. Then flattened."""
    n, c, hh, ww = h.shape
    if pool > 1:
        kh, kw = min(pool, hh), min(pool, ww)
        oh, ow = hh // kh, ww // kw
        out = np.empty((n, c, oh, ow))
        for a in range(oh):
            for b in range(ow):
                out[:, :, a, b] = h[:, :, a * kh:(a + 1) * kh, b * kw:(b + 1) * kw].max(axis=(2, 3))
        h = out
    return h.reshape(n, -1)


# -- DBI -------------------------------------------------------------------------------------------


def test_dbi_of_dense_relu_layer_by_hand():
    rng = np.random.default_rng(0)
    k1, b1 = rng.normal(size=(2, 4)), rng.normal(size=4) * 0.3
    k2, b2 = rng.normal(size=(4, 3)), np.zeros(3)
    net = build_network([{"layer_name": "Dense", "units": 4, "activation": "relu"},
                         {"layer_name": "Dense", "units": 3}], [2])
    net.set_keras_weights([a.astype(np.float32) for a in (k1, b1, k2, b2)])
    y = np.array([0, 1, 2] * 4)
    x = rng.normal(size=(12, 2)) + np.array([[2.0, 0.0], [0.0, 2.0], [-2.0, -2.0]])[y]
    view = _view(net, x, y, 3)
    assert view.hidden_layers[0] == "dense"
    h = np.maximum(_f32(x) @ _f32(k1) + _f32(b1), 0.0)
    expected = hand_dbi(h, y)
    dbi = measures.get("dbi_first_conv")
    # every round is the whole training set, so every round gives the hand value
    assert dbi(view, rounds=3, samples=12) == pytest.approx(expected, rel=1e-6)
    assert dbi(view, rounds=2, samples=500) == pytest.approx(expected, rel=1e-6)
    assert dbi(view, rounds=1, samples=12, layer="dense") == pytest.approx(expected, rel=1e-6)
    assert dbi(view, rounds=1, samples=12, layer=0) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("shape", [(3, 2, 6, 6), (2, 3, 5, 7), (2, 1, 3, 3)])
@pytest.mark.parametrize("pool", [0, 1, 2, 3, 4, 8])
def test_pooled_features_match_numpy_max_pool(shape, pool):
    h = np.random.default_rng(1).normal(size=shape)
    got = pooled_features(torch.tensor(h), pool)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, numpy_max_pool(h, pool))


def test_pooled_features_leave_dense_features_alone():
    h = np.random.default_rng(2).normal(size=(5, 7))
    np.testing.assert_array_equal(pooled_features(h, 4), h)


def _conv_net():
    """1x1 Conv2D(2, relu) on a 6x6x1 input: channel 0 = relu(x), channel 1 = relu(0.5 - 2x)."""
    net = build_network([{"layer_name": "Conv2D", "filters": 2, "kernel_size": 1, "activation": "relu"},
                         {"layer_name": "Flatten"}, {"layer_name": "Dense", "units": 3}], (6, 6, 1))
    rng = np.random.default_rng(3)
    net.set_keras_weights([np.array([[[[1.0, -2.0]]]], dtype=np.float32), np.array([0.0, 0.5], dtype=np.float32),
                           rng.normal(size=(72, 3)).astype(np.float32), np.zeros(3, dtype=np.float32)])
    return net


@pytest.mark.parametrize("pool", [4, 2, 1])
def test_dbi_of_pooled_conv_map_by_hand(pool):
    rng = np.random.default_rng(4)
    y = np.array([0, 1, 2] * 3)
    x = rng.normal(size=(9, 1, 6, 6)) + y[:, None, None, None] * 0.7  # NCHW
    view = _view(_conv_net(), x, y, 3)
    assert view.hidden_layers == ["conv2d"]
    xs = _f32(x)[:, 0]
    h = np.stack([np.maximum(xs, 0.0), np.maximum(0.5 - 2.0 * xs, 0.0)], axis=1)
    expected = hand_dbi(numpy_max_pool(h, pool), y)
    assert measures.get("dbi_first_conv")(view, pool=pool, rounds=2, samples=9) == pytest.approx(expected, rel=1e-6)


def test_dbi_needs_two_classes_and_enough_samples():
    view = _view(_conv_net(), np.random.default_rng(5).normal(size=(6, 1, 6, 6)), np.zeros(6, dtype=np.int64), 3,
                 model_id="single-class")
    with pytest.raises(MeasureError, match="single-class.*at least 2 classes"):
        measures.get("dbi_first_conv")(view)
    # 3 samples of 3 classes: every round has as many classes as samples, every round is skipped
    view = _view(_conv_net(), np.random.default_rng(5).normal(size=(3, 1, 6, 6)), np.arange(3), 3, model_id="tiny")
    with pytest.raises(MeasureError, match="tiny: no round"):
        measures.get("dbi_first_conv")(view, rounds=2)


# -- LWM -------------------------------------------------------------------------------------------

KERNEL = np.array([[1.0, -1.0, 0.2], [0.3, 1.0, -1.2]])  # (in=2, out=3)
BIAS = np.array([0.0, 0.1, -0.1])


def _linear_net(kernel=KERNEL, bias=BIAS):
    net = build_network([{"layer_name": "Dense", "units": kernel.shape[1]}], [kernel.shape[0]])
    net.set_keras_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return net


def test_label_mixup_accuracy_counts_midpoints_by_hand():
    rng = np.random.default_rng(6)
    y = np.array([0] * 4 + [1] * 5 + [2] * 3 + [1])
    x = rng.normal(size=(len(y), 2)) * 1.5
    # count by hand: every same-class pair's midpoint, classified by the linear map
    correct = total = 0
    for c in range(3):
        points = _f32(x)[y == c]
        for a, b in combinations(range(len(points)), 2):
            logits = (points[a] + points[b]) / 2 @ _f32(KERNEL) + _f32(BIAS)
            assert np.sort(logits)[-1] - np.sort(logits)[-2] > 1e-4  # no near-tie
            correct += int(np.argmax(logits) == c)
            total += 1
    assert total == 6 + 15 + 3 and 0 < correct < total
    view = _view(_linear_net(), x, y, 3)
    # per_class above every class size: every batch holds every image, so each batch gives the same count
    assert measures.get("label_mixup_accuracy")(view, batches=2, per_class=10) == pytest.approx(correct / total)


def test_label_mixup_accuracy_pools_random_batches():
    # a linear classifier's class regions are convex: midpoints of points inside region c are classified c.
    # Classes 0 and 2 lie inside their own regions, class 1 inside region 0: its midpoints are all wrong.
    kernel = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])  # logits (x1, x2, -x1 - x2)
    rng = np.random.default_rng(7)
    region0 = np.column_stack([rng.uniform(2, 3, 6), rng.uniform(-1, 1, 6)])
    region0b = np.column_stack([rng.uniform(2, 3, 6), rng.uniform(-1, 1, 6)])
    region2 = -rng.uniform(1, 2, size=(6, 2))
    x = np.concatenate([region0, region0b, region2, [[-3.0, -2.5]]])
    y = np.array([0] * 6 + [1] * 6 + [2] * 6 + [2])  # 7 images of class 2
    view = _view(_linear_net(kernel, np.zeros(3)), x, y, 3)
    # 3 images per class per batch: 3 pairs each, classes 0 and 2 right, class 1 wrong, whatever the draw
    assert measures.get("label_mixup_accuracy")(view, batches=4, per_class=3) == pytest.approx(2 / 3)
    # a class with a single image gives no pair: only class 0's midpoints count
    view = _view(_linear_net(kernel, np.zeros(3)), x[:7], np.array([0] * 6 + [1]), 3)
    assert measures.get("label_mixup_accuracy")(view, batches=2, per_class=4) == 1.0


# -- VPM -------------------------------------------------------------------------------------------

LINE = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0]])


def test_knn_adjacency_by_hand():
    # nearest neighbours on the line 0, 1, 3, 7: 0->1, 1->0, 3->1, 7->3: the path 0-1-2-3
    path = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=float)
    np.testing.assert_array_equal(knn_adjacency(LINE, 1), path)
    # k = 2: 0->{1,3}, 1->{0,3}, 3->{1,0}, 7->{3,1}, i.e. index 0->{1,2}, 1->{0,2}, 2->{1,0}, 3->{2,1}
    two = np.array([[0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 0]], dtype=float)
    np.testing.assert_array_equal(knn_adjacency(LINE, 2), two)


def test_normalized_laplacian_matches_scipy():
    rng = np.random.default_rng(8)
    a = knn_adjacency(rng.normal(size=(30, 5)), 2)
    assert (a == a.T).all() and (a.sum(axis=1) >= 2).all()
    lap = normalized_laplacian(a)
    reference = scipy.sparse.csgraph.laplacian(a, normed=True)
    np.testing.assert_allclose(lap, reference, atol=1e-12)
    y = rng.dirichlet(np.ones(4), size=30)
    assert np.trace(y.T @ lap @ y) == pytest.approx(np.trace(y.T @ reference @ y), rel=1e-12)


def test_label_variation_by_hand():
    # 4 points on rays at angles 0, 0.1, 0.3, 0.7 with different lengths: after L2 normalization the
    # nearest-neighbour graph is the path 0-1-2-3 (degrees 1, 2, 2, 1)
    angles, radii = np.array([0.0, 0.1, 0.3, 0.7]), np.array([1.0, 5.0, 0.2, 3.0])
    features = radii[:, None] * np.column_stack([np.cos(angles), np.sin(angles)])
    onehot = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # tr(Y^T L Y) = sum over edges |Y_i / sqrt(d_i) - Y_j / sqrt(d_j)|^2:
    # edge 0-1: (1 - 1/sqrt2)^2, edge 1-2: 1/2 + 1/2, edge 2-3: (1/sqrt2 - 1)^2
    expected = (1.0 + 2 * (1 - 1 / math.sqrt(2)) ** 2) / 4
    assert label_variation(features, onehot, k=1) == pytest.approx(expected, rel=1e-12)
    soft = np.array([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    degree = np.array([1.0, 2.0, 2.0, 1.0])
    edges = [(0, 1), (1, 2), (2, 3)]
    by_edges = sum(np.sum((soft[i] / math.sqrt(degree[i]) - soft[j] / math.sqrt(degree[j])) ** 2) for i, j in edges)
    assert label_variation(features, soft, k=1) == pytest.approx(by_edges / 4, rel=1e-12)
    # labels constant along the graph's edges with equal degrees: no variation
    assert label_variation(LINE[:2] + 1, np.array([[1.0, 0.0], [1.0, 0.0]]), k=1) == pytest.approx(0.0, abs=1e-15)


def _mix_view(n=40, classes=3, model_id="mix"):
    """x_i = [onehot(y_i), u_i]: the first columns of a mixed input are its mixed label."""
    rng = np.random.default_rng(9)
    y = np.arange(n) % classes
    x = np.concatenate([np.eye(classes)[y], rng.uniform(0.0, 1.0, size=(n, 3))], axis=1)
    k1, b1 = rng.normal(size=(classes + 3, 6)), rng.normal(size=6) * 0.2 + 0.5
    k2, b2 = rng.normal(size=(6, classes)), np.zeros(classes)
    net = build_network([{"layer_name": "Dense", "units": 6, "activation": "relu"},
                         {"layer_name": "Dense", "units": classes}], [classes + 3])
    net.set_keras_weights([a.astype(np.float32) for a in (k1, b1, k2, b2)])
    return _view(net, x, y, classes, model_id=model_id), k1, b1


def test_mixup_sample_mixes_inputs_and_labels_alike():
    view, _, _ = _mix_view()
    x_mix, y_mix = mixup_sample(view, np.random.default_rng(10), 25, 2.0)
    assert x_mix.shape == (25, 6) and y_mix.shape == (25, 3) and y_mix.dtype == np.float64
    np.testing.assert_allclose(x_mix[:, :3].double().numpy(), y_mix, atol=1e-6)
    np.testing.assert_allclose(y_mix.sum(axis=1), 1.0)
    assert ((y_mix > 0) & (y_mix < 1)).any()  # some partners of another class
    x_all, _ = mixup_sample(view, np.random.default_rng(10), 500, 2.0)  # more than the training set: all
    assert len(x_all) == 40


def test_vpm_label_variation_end_to_end():
    view, k1, b1 = _mix_view()
    assert measures.get("vpm_label_variation")(view, n=30) == measures.get("vpm_label_variation")(view, n=30)
    value = measures.get("vpm_label_variation")(view, n=30, k=2)
    # the same draws, then features, graph and Laplacian computed independently
    x_mix, y_mix = mixup_sample(view, view.rng("vpm_label_variation"), 30, 2.0)
    h = np.maximum(_f32(x_mix.numpy()) @ _f32(k1) + _f32(b1), 0.0)
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    a = np.zeros((30, 30))
    for i in range(30):
        distances = [np.linalg.norm(h[i] - h[j]) if j != i else np.inf for j in range(30)]
        for j in np.argsort(distances)[:2]:
            a[i, j] = a[j, i] = 1.0
    lap = scipy.sparse.csgraph.laplacian(a, normed=True)
    assert value == pytest.approx(np.trace(y_mix.T @ lap @ y_mix) / 30, rel=1e-6)


def test_vpm_reads_the_classifiers_input():
    net = build_network(architectures.vgg((8, 8, 1), 10, width=2, depth=1, dropout=0.5), (8, 8, 1))
    assert measures.winners._penultimate_layer(ModelView(net, (torch.zeros(1, 1, 8, 8), torch.zeros(1)),
                                                         num_classes=10), None) == net_layer(net, -2)
    net = build_network(architectures.nin((8, 8, 1), 10, width=2, depth=1), (8, 8, 1))
    view = ModelView(net, (torch.zeros(1, 1, 8, 8), torch.zeros(1)), num_classes=10)
    assert measures.winners._penultimate_layer(view, None) == view.hidden_layers[-1]


def net_layer(net, index):
    return [name for name, _ in net.named_children()][index]


# -- determinism, registry, bad input -----------------------------------------------------------------


SMALL = {"dbi_first_conv": dict(rounds=2, samples=30), "label_mixup_accuracy": dict(batches=2, per_class=3),
         "vpm_label_variation": dict(n=30)}


def _vgg_view(model_id="vgg"):
    torch.manual_seed(0)
    net = build_network(architectures.vgg((8, 8, 1), 10, width=4, depth=1), (8, 8, 1))
    return ModelView(net, (torch.rand(60, 1, 8, 8), torch.arange(60) % 10), num_classes=10,
                     model_id=model_id, task_name="winners-test")


def test_winners_are_deterministic_and_the_product_is_exact():
    view = _vgg_view()
    values = {}
    for name, params in SMALL.items():
        values[name] = measures.get(name)(view, **params)
        assert isinstance(values[name], float) and math.isfinite(values[name])
        assert measures.get(name)(_vgg_view(), **params) == values[name]  # a fresh view repeats exactly
    assert 0.0 <= values["label_mixup_accuracy"] <= 1.0
    product = measures.get("dbi_times_lwm")(view, **SMALL["dbi_first_conv"], **SMALL["label_mixup_accuracy"])
    assert product == values["dbi_first_conv"] * (1 - values["label_mixup_accuracy"])
    # the defaults too (the VGG's 8x8 maps are pooled 4x4 to 2x2)
    assert (measures.get("dbi_times_lwm")(view)
            == measures.get("dbi_first_conv")(view) * (1 - measures.get("label_mixup_accuracy")(view)))


def test_winners_are_registered_with_their_signs_and_defaults():
    available = measures.available()
    for name, sign in WINNERS.items():
        assert name in available
        assert measures.get(name).sign == sign
    assert measures.get("dbi_first_conv").params == dict(layer=None, pool=4, rounds=10, samples=120)
    assert measures.get("label_mixup_accuracy").params == dict(batches=10, per_class=10)
    assert measures.get("dbi_times_lwm").params == dict(layer=None, pool=4, rounds=10, samples=120, batches=10,
                                                       per_class=10)
    assert measures.get("vpm_label_variation").params == dict(n=500, alpha=2.0, k=1, layer=None)
    assert "2012.02775" in measures.get("dbi_times_lwm").source
    assert "2011.12737" in measures.get("vpm_label_variation").source


def test_network_without_hidden_layer_is_refused():
    x = np.random.default_rng(11).normal(size=(12, 2))
    view = _view(_linear_net(), x, np.arange(12) % 3, 3, model_id="linear-7")
    for name in ("dbi_first_conv", "dbi_times_lwm", "vpm_label_variation"):
        with pytest.raises(MeasureError, match="model linear-7: the network has no hidden layer"):
            measures.get(name)(view)
    assert 0.0 <= measures.get("label_mixup_accuracy")(view, batches=1) <= 1.0  # needs no hidden layer
    with pytest.raises(MeasureError, match="linear-7: no layer 'bogus'"):
        measures.get("dbi_first_conv")(_vgg_view("linear-7"), layer="bogus")
