"""The k-variance normalized margins (Chuang et al., NeurIPS 2021): the exact W1, the authors' draws, the
margin normalization on a hand-made network, the layer rule, and a TensorFlow recomputation in the
authors' style (Keras model, GradientTape, numpy's global seed)."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

import measures
from measures import MeasureError, ModelView
from measures.families.kv_margins import representation_layer
from measures.stats.kv_margins import (authors_draws, half_split_w1, margins_and_gradient_norms, runner_up,
                                       uniform_w1)
from task_loaders.keras_layers import build_network


# -- W1 between equal-size uniform samples ---------------------------------------------------------------------


def test_w1_is_the_best_permutation_by_brute_force():
    rng = np.random.default_rng(0)
    for k in (1, 2, 5, 6):
        a, b = rng.normal(size=(k, 3)), rng.normal(size=(k, 3)) + 0.5
        cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
        best = min(sum(cost[i, p[i]] for i in range(k)) for p in itertools.permutations(range(k))) / k
        assert uniform_w1(a, b) == pytest.approx(best, rel=1e-12)
        assert uniform_w1(b, a) == pytest.approx(best, rel=1e-12)  # symmetric


def test_w1_in_one_dimension_is_scipys_wasserstein_distance():
    rng = np.random.default_rng(1)
    for k in (3, 17, 40):
        u, v = rng.exponential(size=k), rng.normal(size=k)
        assert uniform_w1(u[:, None], v[:, None]) == pytest.approx(scipy.stats.wasserstein_distance(u, v), rel=1e-12)


def test_w1_flattens_rows_and_refuses_unequal_samples():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4, 2, 3, 3)), rng.normal(size=(4, 2, 3, 3))
    assert uniform_w1(torch.as_tensor(a, dtype=torch.float32), b) == pytest.approx(
        uniform_w1(a.reshape(4, -1), b.reshape(4, -1)), rel=1e-6)
    assert uniform_w1(a, a) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        uniform_w1(a[:3], b)
    with pytest.raises(ValueError, match="at least one point"):
        uniform_w1(a[:0], b[:0])


@pytest.mark.skipif(importlib.util.find_spec("ot") is None, reason="POT (pip install pot) is not installed")
def test_w1_equals_pots_emd2_the_authors_solver():
    import ot

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) * 2
    uniform = np.full(30, 1 / 30)
    assert uniform_w1(a, b) == pytest.approx(ot.emd2(uniform, uniform, ot.dist(a, b, metric="euclidean")), rel=1e-9)


def test_half_split_compares_the_first_half_with_the_second_and_drops_an_odd_last_row():
    x = np.array([[0.0], [1.0], [10.0], [11.0], [100.0]])
    assert half_split_w1(x) == pytest.approx(10.0)  # {0, 1} against {10, 11}; 100 left out
    with pytest.raises(ValueError, match="at least 2"):
        half_split_w1(x[:1])


# -- the authors' numpy draws ------------------------------------------------------------------------------------


def _authors_global_draws(labels, per_class, seed):
    """The authors' expressions, on numpy's global legacy generator (put back afterwards)."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        size = min(len(labels), (np.max(labels) + 1) * per_class)
        idx = np.random.choice(np.where(labels > -1)[0], size, replace=False)
        drawn = labels[idx]
        orders = [np.random.permutation(np.where(drawn == c)[0]) for c in range(np.max(labels) + 1)]
    finally:
        np.random.set_state(state)
    return idx, orders


@pytest.mark.parametrize("n, per_class, seed", [(400, 200, 0), (1500, 20, 0), (1500, 20, 7), (33, 200, 3)])
def test_draws_are_what_numpys_seeded_global_generator_draws(n, per_class, seed):
    labels = np.random.default_rng(n).integers(0, 10, size=n)
    sample, orders = authors_draws(labels, per_class, seed)
    expected_sample, expected_orders = _authors_global_draws(labels, per_class, seed)
    np.testing.assert_array_equal(sample, expected_sample)
    assert len(orders) == len(expected_orders) == 10
    for got, want in zip(orders, expected_orders):
        np.testing.assert_array_equal(got, want)
    assert len(sample) == min(n, 10 * per_class) and len(set(sample.tolist())) == len(sample)


def test_draws_refuse_bad_labels_and_sizes():
    with pytest.raises(ValueError, match="non-negative integer labels"):
        authors_draws(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="per_class"):
        authors_draws(np.array([0, 1]), per_class=0)


# -- the margins and the gradient norms on a hand-made network -----------------------------------------------


W = np.array([[2.0], [-1.0], [0.5]])  # logits f = W h + b on a 1-D representation h
B = np.array([0.0, 0.3, -0.2])


def _linear_view(x, y, model_id="hand"):
    # layer 0 passes h through, layer 1 is the classifier (names, not digits: a digit names a hidden layer)
    net = nn.Sequential(OrderedDict(flatten=nn.Flatten(), dense=nn.Linear(1, 3)))
    with torch.no_grad():
        net.dense.weight.copy_(torch.as_tensor(W, dtype=torch.float32))
        net.dense.bias.copy_(torch.as_tensor(B, dtype=torch.float32))
    return ModelView(net, (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)), num_classes=3,
                     model_id=model_id, task_name="hand")


def _by_hand(h, y):
    """Margins, rivals and |d(f_y - f_j)/dh| of the linear head, in numpy."""
    z = h[:, None] * W[:, 0][None, :] + B
    others = np.where(np.arange(3)[None, :] == y[:, None], -np.inf, z)
    rival = others.argmax(axis=1)
    margins = z[np.arange(len(y)), y] - others.max(axis=1)
    return margins, rival, np.abs(W[y, 0] - W[rival, 0])


def test_margins_and_gradient_norms_of_a_linear_head():
    h = torch.tensor([[-1.0], [0.2], [3.0], [0.7]])
    y = np.array([0, 1, 2, 1])
    head = nn.Linear(1, 3)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(W, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(B, dtype=torch.float32))
    margins, norms = margins_and_gradient_norms(head, h, y)
    want_margins, rival, want_norms = _by_hand(h.numpy()[:, 0].astype(np.float64), y)
    np.testing.assert_allclose(margins, want_margins, rtol=1e-6)
    np.testing.assert_allclose(norms, want_norms, rtol=1e-6)
    np.testing.assert_array_equal(runner_up(head(h), torch.as_tensor(y)).numpy(), rival)
    # a tie between two rivals goes to the first, as numpy's argmax
    assert runner_up(torch.tensor([[1.0, 5.0, 5.0]]), torch.tensor([0])).item() == 1


def test_the_two_measures_on_a_hand_made_network():
    """900 images of 3 unbalanced classes (500, 300, 100): the sample is 600 of them (200 C), the class weights
    are the whole split's; everything else is worked out here in numpy from the definitions."""
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1, 2], [500, 300, 100])
    rng.shuffle(y)
    h = rng.normal(size=900) + y * 0.8  # the representation is the input itself (layer 1's input)
    view = _linear_view(h[:, None], y)
    sample, orders = authors_draws(y, 200, 0)
    margins, _, norms = _by_hand(h[sample], y[sample])
    weights = np.array([500, 300, 100]) / 900
    kv = [scipy.stats.wasserstein_distance(h[sample[o[:len(o) // 2]]], h[sample[o[len(o) // 2 : 2 * (len(o) // 2)]]])
          for o in orders]
    lipschitz = [norms[o].max() for o in orders]
    want_kv = -np.median(margins) / sum(w * k * L for w, k, L in zip(weights, kv, lipschitz))
    want_gn = -np.median(margins / (norms + 1e-6)) / sum(w * k for w, k in zip(weights, kv))
    assert measures.get("kv_margin")(view, layer=1) == pytest.approx(want_kv, rel=1e-5)
    assert measures.get("kv_gn_margin")(view, layer=1) == pytest.approx(want_gn, rel=1e-5)
    # another seed draws other halves (the margins and weights stay): another value
    assert measures.get("kv_margin")(view, layer=1, seed=1) != pytest.approx(want_kv, rel=1e-5)
    # a repeat k >= 1 draws under another seed shared by the task's models
    again = ModelView(view.network, (view.x_train, view.y_train), num_classes=3, model_id="other", task_name="hand",
                      repeat=1)
    first = measures.get("kv_margin")(again, layer=1)
    assert first != pytest.approx(want_kv, rel=1e-5)
    other_model = ModelView(view.network, (view.x_train, view.y_train), num_classes=3, model_id="third",
                            task_name="hand", repeat=1)
    assert measures.get("kv_margin")(other_model, layer=1) == first


def test_impossible_cases_name_the_model():
    rng = np.random.default_rng(6)
    y = np.repeat([0, 1, 2], 100)
    view = _linear_view(rng.normal(size=(300, 1)), y, model_id="m7")
    with pytest.raises(MeasureError, match="model m7: class 2 has 1 image"):
        measures.get("kv_margin")(_linear_view(rng.normal(size=(201, 1)), np.r_[np.zeros(100, int), np.ones(100, int), [2]],
                                               model_id="m7"), layer=1)
    with pytest.raises(MeasureError, match="model m7: the margin needs at least 200"):
        measures.get("kv_margin")(_linear_view(rng.normal(size=(150, 1)), y[::2], model_id="m7"), layer=1)
    with pytest.raises(MeasureError, match="model m7: none of the layers \\[2, 3, 4, 5\\]"):
        measures.get("kv_margin")(view)  # a Flatten and a Linear: no Conv2D or pooling layer
    with pytest.raises(MeasureError, match="layer index 2 is out of range"):
        measures.get("kv_gn_margin")(view, layer=2)
    with pytest.raises(MeasureError, match="normalizer is 0"):
        measures.get("kv_gn_margin")(_linear_view(np.ones((300, 1)), y, model_id="m7"), layer=1)


# -- which layer: the authors' rule on the zoos' architectures -----------------------------------------------


def _conv(filters):
    return {"layer_name": "Conv2D", "filters": filters, "kernel_size": [3, 3], "padding": "same"}


def _architecture(batchnorm: bool, blocks: int):
    layers = []
    for block in range(blocks):
        for _ in range(2):
            layers += [_conv(4)] + ([{"layer_name": "BatchNormalization"}] if batchnorm else []) + \
                      [{"layer_name": "Activation", "activation": "relu"}]
        layers.append({"layer_name": "MaxPooling2D", "pool_size": [2, 2]})
    return layers + [{"layer_name": "Flatten"}, {"layer_name": "Dense", "units": 10}]


@pytest.mark.parametrize("batchnorm, blocks, shallow, deep", [
    (False, 2, 1, 8),  # conv act CONV: reads layer 1; act(8) POOL(9): reads layer 8, the last conv's activation
    (False, 1, 1, 3),  # ... 8, 9 are past the end / not strided, 6 Dense, 7 ..., 4 POOL: reads layer 3
    (True, 2, 2, 5),  # conv bn act CONV(3): reads layer 2; 8 BN, 9 act, 6 POOL: reads layer 5 (the 2nd conv's)
    (True, 1, 2, 5),
])
def test_layer_rule_of_the_authors(batchnorm, blocks, shallow, deep):
    net = build_network(_architecture(batchnorm, blocks), (8, 8, 1))
    view = ModelView(net, (torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long)), num_classes=10)
    names = view.layer_names
    assert representation_layer(view, "shallow") == names[shallow]
    assert representation_layer(view, "deep") == names[deep]
    assert representation_layer(view, deep + 1) == names[deep]
    with pytest.raises(MeasureError, match="'shallow', 'deep' or a layer index"):
        representation_layer(view, "first")


def test_registered_with_sign_stochastic_flag_source_and_the_authors_defaults():
    for name, layer in (("kv_margin", "shallow"), ("kv_gn_margin", "deep")):
        entry = measures.get(name)
        assert entry.sign == 1 and entry.stochastic  # the halves are random draws
        assert entry.params["layer"] == layer and entry.params["per_class"] == 200 and entry.params["seed"] == 0
        assert "Chuang" in entry.source and "chingyaoc/kV-Margin" in entry.source and "Chuang" in entry.description
        assert measures.family(entry) == "kv_margins"
    assert measures.get("kv_gn_margin").params["eps"] == 1e-6
    assert measures.select(["family:kv_margins"]) == ["kv_gn_margin", "kv_margin"]


# -- a TensorFlow recomputation in the authors' style ----------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow (pip install -e '.[tf]')")
def test_agrees_with_a_tensorflow_recomputation_on_a_zoo_model(embedded_zoo):
    """The starting kit's Keras model of two digits-nobn models, the representation as the recorded
    ``_last_seen_input``, gradients from a GradientTape over the layers called one by one, numpy's global
    seed: the recipe of the authors' code, written out here, against the torch measures.

    Run in a fresh interpreter: ``tf.keras`` must be Keras 3 on its TensorFlow backend, and another test of the
    same run may already have imported Keras on the torch backend (tests/test_keras_equivalence.py)."""
    code = f"from tests.test_kv_margins import tensorflow_recomputation; tensorflow_recomputation({str(embedded_zoo('digits-nobn'))!r})"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.count("agrees") == 4, result.stdout


def tensorflow_recomputation(zoo: str) -> None:
    """The recomputation of the test above, on the first two models of ``zoo``; raises where they differ."""
    from benchmark.running.runner import model_view
    from benchmark.running.submission import keras_model, tensorflow
    from sklearn.metrics import pairwise_distances
    from scipy.optimize import linear_sum_assignment
    from task_loaders import load_task

    tf = tensorflow()
    task = load_task(zoo)
    for model_id in task.model_ids[:2]:
        view = model_view(task, model_id)
        model = keras_model(tf, view.network, None)
        x = np.ascontiguousarray(view.x_train.numpy().transpose(0, 2, 3, 1))
        labels = view.y_train.numpy().astype(np.int64)
        for name, strided in (("kv_margin", (2, 3, 4, 5)), ("kv_gn_margin", (8, 9, 6, 7, 5, 4, 3, 2))):
            index = next(i for i in strided if i < len(model.layers) and "strides" in model.layers[i].get_config())
            sample, orders = _authors_global_draws(labels, 200, 0)
            images, y = x[sample], labels[sample]
            with tf.GradientTape(persistent=True) as tape:
                values = [tf.convert_to_tensor(images)]
                tape.watch(values)
                for layer in model.layers:
                    values.append(layer(values[-1]))
                logits = values[-1].numpy()
                rival = np.where(np.arange(logits.shape[1]) == y[:, None], -1e4, logits).argmax(axis=1)
                true_logit = tf.gather(values[-1], y, batch_dims=1)
                rival_logit = tf.gather(values[-1], rival, batch_dims=1)
            grads = (tape.gradient(true_logit, values[index]) - tape.gradient(rival_logit, values[index])).numpy()
            norms = np.linalg.norm(grads.reshape(len(y), -1), axis=1)
            margins = logits[np.arange(len(y)), y] - np.where(np.arange(logits.shape[1]) == y[:, None], -np.inf,
                                                              logits).max(axis=1)
            features = values[index].numpy().reshape(len(y), -1)
            gamma = 0.0
            for c, order in enumerate(orders):
                k = len(order) // 2
                cost = pairwise_distances(features[order[:k]], features[order[k : 2 * k]])
                rows, cols = linear_sum_assignment(cost)
                kv = cost[rows, cols].mean()
                weight = np.mean(labels == c)
                gamma += weight * kv * (norms[order].max() if name == "kv_margin" else 1.0)
            kept = margins if name == "kv_margin" else margins / (norms + 1e-6)
            expected = -np.median(kept) / gamma
            assert measures.get(name)(view) == pytest.approx(expected, rel=1e-4), (model_id, name)
            print(model_id, name, "agrees")
