"""The PGDL winners' measures (DBI, LWM, DBI x LWM, VPM) against values computed independently."""

import math
from itertools import combinations

import numpy as np
import pytest
import scipy.sparse.csgraph
import torch

import measures
from measures import MeasureError, ModelView
import importlib.util

from measures.families.winners.pgdl_conventions import first_weighted_layer
from measures.stats.tf_random import PhiloxStream, eager_op_seeds, op_seeds, shuffle_draws
from measures.families.winners.representations import mixup_sample, vpm_seed
from measures.stats.graphs import knn_adjacency, label_variation, normalized_laplacian
from measures.stats.representations import pooled_features
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
    assert first_weighted_layer(view) == "dense"
    h = np.maximum(_f32(x) @ _f32(k1) + _f32(b1), 0.0)
    expected = hand_dbi(h, y)
    dbi = measures.get("dbi_first_conv")
    # a buffer of 1 keeps the stream's order: each round of 12 is the whole training set
    assert dbi(view, rounds=3, samples=12, buffer=1) == pytest.approx(expected, rel=1e-6)
    assert dbi(view, rounds=1, samples=12, buffer=1, layer="dense") == pytest.approx(expected, rel=1e-6)
    assert dbi(view, rounds=1, samples=12, buffer=1, layer=0) == pytest.approx(expected, rel=1e-6)
    # rounds of 6 consecutive samples: the first and second halves of the set, averaged
    halves = (hand_dbi(h[:6], y[:6]) + hand_dbi(h[6:], y[6:])) / 2
    assert dbi(view, rounds=2, samples=6, buffer=1) == pytest.approx(halves, rel=1e-6)
    # with the default buffer the draws are random, the set is sampled with repetitions
    assert dbi(view, rounds=3, samples=12) != pytest.approx(expected, rel=1e-6)


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
    assert first_weighted_layer(view) == "conv2d"
    xs = _f32(x)[:, 0]
    h = np.stack([np.maximum(xs, 0.0), np.maximum(0.5 - 2.0 * xs, 0.0)], axis=1)
    expected = hand_dbi(numpy_max_pool(h, pool), y)
    got = measures.get("dbi_first_conv")(view, pool=pool, rounds=2, samples=9, buffer=1)
    assert got == pytest.approx(expected, rel=1e-6)


def test_dbi_reads_the_conv_output_before_a_separate_activation():
    # Conv2D (linear) then Activation(relu): the authors' layer is the Conv2D's own output, 2x, not relu(2x)
    net = build_network([{"layer_name": "Conv2D", "filters": 1, "kernel_size": 1},
                         {"layer_name": "Activation", "activation": "relu"},
                         {"layer_name": "Flatten"}, {"layer_name": "Dense", "units": 3}], (4, 4, 1))
    net.set_keras_weights([np.array([[[[2.0]]]], dtype=np.float32), np.zeros(1, dtype=np.float32),
                           np.ones((16, 3), dtype=np.float32), np.zeros(3, dtype=np.float32)])
    rng = np.random.default_rng(12)
    y = np.arange(12) % 3
    x = rng.normal(size=(12, 1, 4, 4)) + y[:, None, None, None]
    view = _view(net, x, y, 3)
    expected = hand_dbi(numpy_max_pool(2 * _f32(x), 1), y)
    assert hand_dbi(numpy_max_pool(np.maximum(2 * _f32(x), 0), 1), y) != pytest.approx(expected, rel=1e-3)
    assert measures.get("dbi_first_conv")(view, pool=1, rounds=1, samples=12, buffer=1) == pytest.approx(expected, rel=1e-6)


def test_dbi_needs_two_classes_and_enough_samples():
    view = _view(_conv_net(), np.random.default_rng(5).normal(size=(6, 1, 6, 6)), np.zeros(6, dtype=np.int64), 3,
                 model_id="single-class")
    with pytest.raises(MeasureError, match="single-class.*at least 2 classes"):
        measures.get("dbi_first_conv")(view)
    # 3 samples of 3 classes: every round has as many classes as samples, every round is skipped
    view = _view(_conv_net(), np.random.default_rng(5).normal(size=(3, 1, 6, 6)), np.arange(3), 3, model_id="tiny")
    with pytest.raises(MeasureError, match="tiny: no round"):
        measures.get("dbi_first_conv")(view, rounds=2, samples=3, buffer=1)


# -- the tf.data shuffle buffer ----------------------------------------------------------------------


def test_shuffle_draws_take_the_datasets_seeds():
    stream = np.arange(30) + 100
    # TensorFlow's draws (tests/test_tf_random.py checks them against TensorFlow)
    a = shuffle_draws(stream, 40, 8, 3, 4)
    assert a.tolist() != shuffle_draws(stream, 40, 8, 3, 5).tolist()
    assert set(a.tolist()) <= set(stream.tolist()) and a[:1] < 108  # the first draw comes from the first 8
    # a buffer of 1 keeps the order, cycling
    np.testing.assert_array_equal(shuffle_draws(stream[:4], 6, 1, 5, 6), [100, 101, 102, 103, 100, 101])


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
    y = y[rng.permutation(len(y))]
    x = rng.normal(size=(len(y), 2)) * 1.5
    # the authors' definition: C = 3 classes, batches of 3 * per_class consecutive images (starting over
    # at the end of the set), per class the mean over batches of the batch's pair accuracy, then the mean
    per_class, batches = 2, 5
    order = np.arange(batches * 3 * per_class) % len(y)
    accuracy = {c: [] for c in range(3)}
    for b in range(batches):
        index = order[b * 6 : (b + 1) * 6]
        for c in range(3):
            points = _f32(x)[index[y[index] == c]]
            if len(points) < 2:
                continue
            hits = [np.argmax((points[i] + points[j]) / 2 @ _f32(KERNEL) + _f32(BIAS)) == c
                    for i, j in combinations(range(len(points)), 2)]
            accuracy[c].append(np.mean(hits))
    expected = np.mean([np.mean(a) for a in accuracy.values() if a])
    assert 0 < expected < 1
    view = _view(_linear_net(), x, y, 3)
    assert measures.get("label_mixup_accuracy")(view, batches=batches, per_class=per_class) == pytest.approx(expected)


def test_label_mixup_accuracy_is_a_mean_over_classes():
    # a linear classifier's class regions are convex: midpoints of points inside region c are classified c.
    # Classes 0 and 2 lie inside their own regions, class 1 inside region 0: its midpoints are all wrong.
    kernel = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])  # logits (x1, x2, -x1 - x2)
    rng = np.random.default_rng(7)
    region0 = np.column_stack([rng.uniform(2, 3, 6), rng.uniform(-1, 1, 6)])
    region0b = np.column_stack([rng.uniform(2, 3, 3), rng.uniform(-1, 1, 3)])
    region2 = -rng.uniform(1, 2, size=(9, 2))
    x = np.concatenate([region0, region0b, region2])
    y = np.array([0] * 6 + [1] * 3 + [2] * 9)  # unequal classes: a pooled accuracy would not be 2/3
    view = _view(_linear_net(kernel, np.zeros(3)), x, y, 3)
    assert measures.get("label_mixup_accuracy")(view, batches=1, per_class=6) == pytest.approx(2 / 3)
    # a class that never has 2 images in a batch gives no accuracy: only classes 0 and 2 count
    view = _view(_linear_net(kernel, np.zeros(3)), x[[0, 1, 6, 9, 10, 11]], np.array([0, 0, 1, 2, 2, 2]), 3)
    assert measures.get("label_mixup_accuracy")(view, batches=1, per_class=2) == 1.0


# -- VPM -------------------------------------------------------------------------------------------

RAYS = np.array([0.0, 0.1, 0.3, 0.7])  # angles; after L2 normalization the nearest neighbours are 0->1, 1->0, 2->1, 3->2


def _rays(radii=(1.0, 5.0, 0.2, 3.0), angles=RAYS):
    return np.asarray(radii)[:, None] * np.column_stack([np.cos(angles), np.sin(angles)])


def test_knn_adjacency_by_hand():
    # directed: row i marks i's nearest row only (not symmetrized), whatever the lengths
    directed = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=float)
    np.testing.assert_array_equal(knn_adjacency(_rays(), 1), directed)
    # k = 2: 0->{1,2}, 1->{0,2}, 2->{1,0}, 3->{2,1}
    two = np.array([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]], dtype=float)
    np.testing.assert_array_equal(knn_adjacency(_rays(), 2), two)
    # ties are all marked: (0, 1) is as near to (1, 0) as to (-1, 0)
    tie = knn_adjacency(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]), 1)
    np.testing.assert_array_equal(tie[1], [1, 0, 1, 0])
    with pytest.raises(ValueError, match="coincide"):
        knn_adjacency(np.ones((3, 2)), 1)


def test_normalized_laplacian_by_hand():
    a = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)  # row sums 1, 2, 1
    expected = np.eye(3) - np.array([[0, 1 / math.sqrt(2), 0], [1 / math.sqrt(2), 0, 1 / math.sqrt(2)],
                                     [0, 1 / math.sqrt(2), 0]])
    np.testing.assert_allclose(normalized_laplacian(a), expected, rtol=1e-12)
    directed = np.array([[0, 1, 0], [1, 0, 0], [0, 1, 0]], dtype=float)  # every out-degree 1: L = I - A
    np.testing.assert_array_equal(normalized_laplacian(directed), np.eye(3) - directed)


def test_label_variation_by_hand():
    onehot = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # L = I - A with A: 0->1, 1->0, 2->1, 3->2; tr(Y^T L Y) = sum_i Y_i . (Y_i - Y_nn(i)) = 0 + 0 + 1 + 0
    assert label_variation(_rays(), onehot, k=1) == pytest.approx(1 / 16, rel=1e-12)
    assert label_variation(_rays(), onehot, k=1, n=500) == pytest.approx(1 / 2000, rel=1e-12)  # the authors' 2*2*500
    soft = np.array([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    nn = [1, 0, 1, 2]
    by_hand = sum(soft[i] @ (soft[i] - soft[nn[i]]) for i in range(4))
    assert label_variation(_rays(), soft, k=1) == pytest.approx(by_hand / 16, rel=1e-12)
    # a negative trace is clipped to 0, as the authors clip it
    neg = np.array([[1.0, 0.0], [1.0, 0.0], [0.1, 0.0], [0.1, 0.0]])
    assert sum(neg[i] @ (neg[i] - neg[nn[i]]) for i in range(4)) < 0
    assert label_variation(_rays(), neg, k=1) == 0.0


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


def test_mixup_sample_draws_per_class_then_mixes_inputs_and_labels_alike():
    view, _, _ = _mix_view()
    # a buffer of 1: each class gives its first n // 3 images in stored order, class by class
    x_mix, y_mix = mixup_sample(view, 10, 25, 2.0, buffer=1)
    assert x_mix.shape == (24, 6) and y_mix.shape == (24, 3) and y_mix.dtype == np.float64
    np.testing.assert_allclose(x_mix[:, :3].double().numpy(), y_mix, atol=1e-6)
    np.testing.assert_allclose(y_mix.sum(axis=1), 1.0, atol=1e-6)
    # partners: a forward Fisher-Yates shuffle driven by Philox(10, 0) (tf.random.shuffle under seed 10, op seed 0)
    words = PhiloxStream(10, 0).uint32(23)
    perm = list(range(24))
    for i in range(23):
        j = i + int(words[i]) % (24 - i)
        perm[i], perm[j] = perm[j], perm[i]
    lam = np.random.RandomState(10).beta(2.0, 2.0, size=24).astype(np.float32)  # np.random.seed(10); np.random.beta
    index = np.concatenate([np.flatnonzero(view.y_train.numpy() == c)[:8] for c in range(3)])
    x = view.x_train.numpy()[index]
    np.testing.assert_allclose(x_mix.numpy(), lam[:, None] * x + (1 - lam[:, None]) * x[perm], rtol=1e-6)
    # with a larger buffer, class c's images are its shuffle under the c-th eager op seed of seed 10
    x_mix, _ = mixup_sample(view, 10, 25, 2.0, buffer=100)
    index = np.concatenate([shuffle_draws(np.flatnonzero(view.y_train.numpy() == c), 8, 100, *op_seeds(10, op))
                            for c, op in enumerate(eager_op_seeds(10, 3))])
    assert index.tolist() != sorted(index.tolist())
    x = view.x_train.numpy()[index]
    np.testing.assert_allclose(x_mix.numpy(), lam[:, None] * x + (1 - lam[:, None]) * x[perm], rtol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
@pytest.mark.parametrize("seed", [0, 3])
def test_mixup_sample_is_what_the_authors_tensorflow_draws_under_the_seed(seed):
    """Lassance et al.'s sampling, re-enacted in TensorFlow: per class filter/repeat/shuffle(100)/batch as eager ops,
    then tf.random.shuffle inside a tf.function and numpy's beta, after tf.random.set_seed and np.random.seed."""
    tf = pytest.importorskip("tensorflow")
    view, _, _ = _mix_view()
    x_np, y_np = view.x_train.numpy(), view.y_train.numpy().astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((x_np, y_np))
    tf.random.set_seed(seed)
    np.random.seed(seed)
    batches = []
    for a in range(3):
        batches.append(next(dataset.filter(lambda data, labels: tf.equal(labels, a)).repeat().shuffle(100)
                            .batch(10).__iter__()))
    x = tf.concat([b[0] for b in batches], 0)
    y = tf.concat([b[1] for b in batches], 0)

    @tf.function()
    def mix(x, y):
        one_hot = tf.one_hot(y, tf.cast(tf.reduce_max(y) + 1, tf.int32))
        partners = tf.random.shuffle(range(x.shape[0]))
        lam = np.random.beta(2.0, 2.0, size=(x.shape[0], 1)).astype(np.float32)
        return lam * x + (1.0 - lam) * tf.gather(x, partners), lam * one_hot + (1.0 - lam) * tf.gather(one_hot, partners)

    x_tf, y_tf = mix(x, y)
    x_mix, y_mix = mixup_sample(view, seed, 30, 2.0)
    np.testing.assert_allclose(x_mix.numpy(), x_tf.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(y_mix, y_tf.numpy(), rtol=1e-6, atol=1e-7)


def test_vpm_label_variation_end_to_end():
    view, k1, b1 = _mix_view()
    assert measures.get("vpm_label_variation")(view, n=30) == measures.get("vpm_label_variation")(view, n=30)
    value = measures.get("vpm_label_variation")(view, n=30)
    # the same draws, then the last layer's input, the directed 1-NN graph and L = I - A computed independently
    x_mix, y_mix = mixup_sample(view, 0, 30, 2.0)
    h = np.maximum(_f32(x_mix.numpy()) @ _f32(k1) + _f32(b1), 0.0)
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    trace = 0.0
    for i in range(30):
        distances = [np.linalg.norm(h[i] - h[j]) if j != i else np.inf for j in range(30)]
        trace += y_mix[i] @ (y_mix[i] - y_mix[int(np.argmin(distances))])
    assert value == pytest.approx(max(trace, 0.0) / (4 * 30), rel=1e-6)


def test_vpm_reads_the_last_layers_input():
    view, _, _ = _mix_view()
    x_mix, y_mix = mixup_sample(view, 0, 30, 2.0)
    h = torch.relu(view.network[0].linear(x_mix)).detach().double().numpy()
    assert measures.get("vpm_label_variation")(view, n=30) == pytest.approx(label_variation(h, y_mix, 1, 30))
    # one layer: the inputs themselves
    x = np.random.default_rng(11).normal(size=(12, 2))
    lone = _view(_linear_net(), x, np.arange(12) % 3, 3)
    x_mix, y_mix = mixup_sample(lone, 0, 12, 2.0)
    assert measures.get("vpm_label_variation")(lone, n=12) == pytest.approx(label_variation(x_mix, y_mix, 1, 12))



def test_vpm_draws_the_same_for_every_model_of_a_repeat():
    """Every model of a task is measured on the draws of the seed 0 (another repeat: another seed, again shared)."""
    (a, k1, b1), (b, _, _) = _mix_view(model_id="a"), _mix_view(model_id="b")
    b.network[0].linear.weight.data.mul_(2.0)  # another model on the same training set: kernel 2 k1
    assert vpm_seed(a) == vpm_seed(b) == 0
    x_mix, y_mix = mixup_sample(a, 0, 30, 2.0)
    for view, kernel in ((a, k1), (b, 2.0 * k1)):
        h = np.maximum(_f32(x_mix.numpy()) @ _f32(kernel) + _f32(b1), 0.0)
        assert measures.get("vpm_label_variation")(view, n=30) == pytest.approx(label_variation(h, y_mix, 1, 30),
                                                                               rel=1e-6)
    # repeat 1 draws under another seed, the same for both models
    again = [ModelView(v.network, (v.x_train, v.y_train), num_classes=3, model_id=v.model_id, task_name=v.task_name,
                       repeat=1) for v in (a, b)]
    assert vpm_seed(again[0]) == vpm_seed(again[1]) != 0
    assert not np.array_equal(mixup_sample(again[0], vpm_seed(again[0]), 30, 2.0)[1], y_mix)

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
    assert measures.get("dbi_first_conv").params == dict(layer=None, pool=4, rounds=10, samples=120, buffer=5000)
    assert measures.get("label_mixup_accuracy").params == dict(batches=10, per_class=10)
    assert measures.get("dbi_times_lwm").params == dict(layer=None, pool=4, rounds=10, samples=120, buffer=5000,
                                                       batches=10, per_class=10)
    assert measures.get("vpm_label_variation").params == dict(n=500, alpha=2.0, k=1, layer=None, buffer=100)
    assert "2012.02775" in measures.get("dbi_times_lwm").source
    assert "2011.12737" in measures.get("vpm_label_variation").source


def test_network_without_conv_or_dense_layer_is_refused():
    x = np.random.default_rng(11).normal(size=(12, 4))
    net = build_network([{"layer_name": "Flatten"}, {"layer_name": "Activation", "activation": "softmax"}], [4])
    view = _view(net, x, np.arange(12) % 3, 4, model_id="linear-7")
    for name in ("dbi_first_conv", "dbi_times_lwm"):
        with pytest.raises(MeasureError, match="model linear-7: the network has no Conv2D or Dense layer"):
            measures.get(name)(view)
    with pytest.raises(MeasureError, match="linear-7: no layer 'bogus'"):
        measures.get("dbi_first_conv")(_vgg_view("linear-7"), layer="bogus")
