"""Sparsity and clustering of hidden representations against values worked out by hand or by sklearn."""

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

import measures
from measures import MeasureError, ModelView
from measures.families.per_layer import layer_statistics
from measures.stats import representations as rep
from task_loaders import architectures, build_network

SPARSITY = ["channel_sparsity", "element_sparsity", "dead_units", "hoyer_sparsity"]
CLUSTERING = ["cluster_purity", "cluster_perplexity", "davies_bouldin", "silhouette", "calinski_harabasz"]


# -- sparsity on constructed activations ------------------------------------------------------------


def _zero_pattern():
    """(2 samples, 3 channels, 2x2): the zero pattern is spelled out in the comments."""
    h = torch.zeros(2, 3, 2, 2)
    h[0, 1, 0, 1] = 0.5          # sample 0: channel 0 zero, channel 1 one non-zero, channel 2 zero
    h[1, 1, 1, :] = 2.0          # sample 1: channel 0 zero, channel 1 two non-zeros,
    h[1, 2] = 1.0                #           channel 2 all four non-zero
    return h


def test_channel_and_element_sparsity_and_dead_units_by_hand():
    h = _zero_pattern()
    # all-zero maps: sample 0 has 2 of 3 (channels 0, 2), sample 1 has 1 of 3 (channel 0)
    assert rep.channel_sparsity(h) == pytest.approx((2 / 3 + 1 / 3) / 2)
    # zeros: sample 0: 4 + 3 + 4 = 11, sample 1: 4 + 2 + 0 = 6, of 24
    assert rep.element_sparsity(h) == pytest.approx(17 / 24)
    # only channel 0 is zero for both samples
    assert rep.dead_units(h) == pytest.approx(1 / 3)
    # numpy input and a dense (N, F) representation, where a channel is a unit
    dense = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    assert rep.channel_sparsity(dense) == pytest.approx(6 / 8)
    assert rep.element_sparsity(dense) == pytest.approx(6 / 8)
    assert rep.dead_units(dense) == pytest.approx(2 / 4)  # units 0 and 3


def test_hoyer_by_hand():
    one_hot = torch.tensor([[0.0, 0.0, 5.0, 0.0]])
    constant = torch.tensor([[2.0, 2.0, 2.0, 2.0]])
    assert rep.hoyer_sparsity(one_hot) == pytest.approx(1.0)
    assert rep.hoyer_sparsity(constant) == pytest.approx(0.0, abs=1e-12)
    # (3, 4, 0, 0): |x|_1 = 7, |x|_2 = 5, sqrt(n) = 2 -> (2 - 1.4) / (2 - 1) = 0.6
    assert rep.hoyer_sparsity(torch.tensor([[3.0, 4.0, 0.0, 0.0]])) == pytest.approx(0.6)
    # per-sample, averaged; an all-zero sample counts as 1 (documented convention)
    batch = torch.tensor([[0.0, 0.0, 5.0, 0.0], [2.0, 2.0, 2.0, 2.0], [3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert rep.hoyer_sparsity(batch) == pytest.approx((1 + 0 + 0.6 + 1) / 4)
    # a conv sample is flattened over channels and positions: one non-zero among 8 -> 1
    conv = torch.zeros(1, 2, 2, 2)
    conv[0, 1, 0, 0] = 3.0
    assert rep.hoyer_sparsity(conv) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 elements"):
        rep.hoyer_sparsity(torch.ones(3, 1))


def test_representation_validation():
    with pytest.raises(ValueError, match=r"shape \(N, C, \.\.\.\)"):
        rep.channel_sparsity(torch.ones(5))
    with pytest.raises(ValueError, match="NaN or infinite"):
        rep.element_sparsity(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="empty"):
        rep.dead_units(torch.ones(0, 3))
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray"):
        rep.hoyer_sparsity([[1.0, 0.0]])
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        rep.cluster_purity(torch.ones(3, 2), [0, 1])
    with pytest.raises(ValueError, match="integer class indices"):
        rep.cluster_purity(torch.ones(2, 2), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="reduce must be one of"):
        rep.cluster_purity(torch.ones(2, 2), [0, 1], reduce="median")


# -- implicit clusters ------------------------------------------------------------------------------


def test_implicit_clusters_by_hand():
    # 6 samples, 3 units; classes 0, 0, 1, 1, 2, 2
    h = torch.tensor([[1.0, 0.0, 0.0],
                      [2.0, 0.0, 0.0],
                      [0.5, 0.0, 0.0],
                      [0.0, 0.0, 0.0],
                      [0.0, 3.0, 0.0],
                      [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    # unit 0: samples {0, 1, 2} -> size 1/2, classes (2, 1, 0)/3 -> purity 2/3,
    #   entropy = log2(3) - 2/3 -> perplexity 3 / 2**(2/3)
    # unit 1: samples {4, 5} -> size 1/3, one class -> purity 1, perplexity 1
    # unit 2: dead -> excluded from the averages
    c = rep.implicit_clusters(h, y, num_classes=3)
    assert c["live"].tolist() == [True, True, False]
    np.testing.assert_allclose(c["size"], [1 / 2, 1 / 3, 0.0])
    np.testing.assert_allclose(c["purity"][:2], [2 / 3, 1.0])
    np.testing.assert_allclose(c["perplexity"][:2], [3 / 2 ** (2 / 3), 1.0])
    assert math.isnan(c["purity"][2]) and math.isnan(c["perplexity"][2])
    assert rep.cluster_size(h, y) == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert rep.cluster_purity(h, y) == pytest.approx((2 / 3 + 1) / 2)
    assert rep.cluster_perplexity(h, y) == pytest.approx((3 / 2 ** (2 / 3) + 1) / 2)
    # a cluster spread evenly over 3 classes has perplexity 3
    assert rep.cluster_perplexity(torch.ones(6, 1), y) == pytest.approx(3.0)
    # every channel dead: nothing to average
    assert math.isnan(rep.cluster_purity(torch.zeros(6, 2), y))


def test_implicit_clusters_reduce_and_threshold_on_feature_maps():
    h = torch.zeros(4, 1, 2, 2)
    h[0, 0] = 1.0               # mean 1
    h[1, 0, 0, 0] = 1.0         # max 1, mean 0.25
    h[2, 0, 0, 0] = 0.1         # max 0.1, mean 0.025
    y = torch.tensor([0, 1, 1, 1])
    assert rep.channel_activity(h).squeeze(1).tolist() == [True, True, True, False]
    assert rep.channel_activity(h, reduce="mean", threshold=0.2).squeeze(1).tolist() == [True, True, False, False]
    assert rep.cluster_size(h, y) == pytest.approx(3 / 4)
    assert rep.cluster_purity(h, y) == pytest.approx(2 / 3)
    assert rep.cluster_size(h, y, reduce="mean", threshold=0.2) == pytest.approx(2 / 4)
    assert rep.cluster_purity(h, y, reduce="mean", threshold=0.2) == pytest.approx(1 / 2)
    assert rep.cluster_perplexity(h, y, reduce="mean", threshold=0.2) == pytest.approx(2.0)


# -- label-based cluster quality --------------------------------------------------------------------


def test_davies_bouldin_by_hand_two_clusters():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0]])
    y = np.array([0, 0, 1, 1])
    # independent computation: centroids, scatters (mean distance to the centroid), ratio
    c0, c1 = x[:2].mean(axis=0), x[2:].mean(axis=0)                  # (1, 0) and (10, 2)
    s0 = np.mean(np.linalg.norm(x[:2] - c0, axis=1))                  # 1
    s1 = np.mean(np.linalg.norm(x[2:] - c1, axis=1))                  # 2
    ratio = (s0 + s1) / np.linalg.norm(c0 - c1)                       # 3 / sqrt(85)
    assert ratio == pytest.approx(3 / math.sqrt(85))
    # with two clusters each one's most similar cluster is the other: DB = mean(R, R) = R
    assert rep.davies_bouldin(x, y) == pytest.approx(ratio, rel=1e-6)
    assert rep.davies_bouldin(x, y) == pytest.approx(davies_bouldin_score(x, y), rel=1e-6)


@pytest.fixture(scope="module")
def conv_representation():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 4
    h = torch.relu(torch.randn(40, 3, 4, 4, generator=gen) + 0.5 * y.view(-1, 1, 1, 1).float())
    return h, y


def test_cluster_quality_equals_sklearn(conv_representation):
    h, y = conv_representation
    flat = h.reshape(len(h), -1).numpy()
    avg = h.mean(dim=(2, 3)).numpy()
    mx = h.amax(dim=(2, 3)).numpy()
    for x, pool in ((flat, None), (avg, "avg"), (mx, "max")):
        assert rep.davies_bouldin(h, y, pool=pool) == pytest.approx(davies_bouldin_score(x, y.numpy()), rel=1e-5)
        assert rep.silhouette(h, y, pool=pool) == pytest.approx(silhouette_score(x, y.numpy()), rel=1e-5)
        assert rep.calinski_harabasz(h, y, pool=pool) == pytest.approx(calinski_harabasz_score(x, y.numpy()), rel=1e-5)
    reduced = PCA(n_components=5, random_state=0).fit_transform(flat)
    assert rep.davies_bouldin(h, y, pca=5) == pytest.approx(davies_bouldin_score(reduced, y.numpy()), rel=1e-4)
    # all three indices are Euclidean: a full-rank PCA (a rotation) leaves them unchanged
    assert rep.davies_bouldin(h, y, pool="avg", pca=3) == pytest.approx(rep.davies_bouldin(h, y, pool="avg"), rel=1e-4)
    assert rep.silhouette(h, y, pool="avg", pca=3) == pytest.approx(rep.silhouette(h, y, pool="avg"), rel=1e-4)
    assert rep.calinski_harabasz(h, y, pool="avg", pca=3) == pytest.approx(rep.calinski_harabasz(h, y, pool="avg"), rel=1e-4)


def test_cluster_quality_degenerate_cases():
    y = np.array([0, 0, 1, 1])
    zeros = np.zeros((4, 3))
    assert math.isnan(rep.davies_bouldin(zeros, y))       # sklearn says 0 ("perfect")
    assert math.isnan(rep.silhouette(zeros, y))
    assert math.isnan(rep.calinski_harabasz(zeros, y))
    same_centroids = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])
    assert math.isnan(rep.davies_bouldin(same_centroids, y))
    assert rep.calinski_harabasz(np.array([[0.0], [0.0], [1.0], [1.0]]), y) == math.inf
    with pytest.raises(ValueError, match="number of classes"):
        rep.silhouette(np.random.rand(4, 2), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="pool must be one of"):
        rep.davies_bouldin(zeros, y, pool="sum")
    with pytest.raises(ValueError, match="pca must be None or a positive"):
        rep.davies_bouldin(zeros, y, pca=0)


# -- registered measures on a ModelView --------------------------------------------------------------


def _view():
    torch.manual_seed(0)
    net = build_network(architectures.cnn4((8, 8, 1), 10, width=4, batchnorm=True), (8, 8, 1))
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(80, 1, 8, 8, generator=gen)
    y = torch.arange(80) % 10
    return ModelView(net, (x, y), model_id="3", sample_size=60)


def test_measures_are_registered_with_sign_and_params():
    for name in SPARSITY + CLUSTERING:
        entry = measures.get(name)
        assert entry.params["layer"] == "all" and entry.params["n"] is None
        assert entry.source and entry.description
    assert {measures.get(n).sign for n in SPARSITY} == {-1}
    assert measures.get("davies_bouldin").sign == 1 and measures.get("cluster_perplexity").sign == 1
    assert measures.get("silhouette").sign == measures.get("calinski_harabasz").sign == -1
    assert measures.get("cluster_purity").sign == -1


def test_all_measures_and_layer_statistics_share_one_forward_pass():
    view = _view()
    values = {name: measures.get(name)(view) for name in SPARSITY + CLUSTERING}
    stats = layer_statistics(view)
    assert view.forward_passes == 1
    assert list(stats) == view.hidden_layers == ["activation", "activation_1", "activation_2", "activation_3"]
    assert all(list(s) == list(rep.STATISTICS) for s in stats.values())
    for name, value in values.items():
        assert math.isfinite(value)
        assert value == pytest.approx(np.mean([stats[layer][name] for layer in view.hidden_layers]), rel=1e-9)
    # per-layer values are the pure functions of the cached activations and the sample's labels
    _, labels = view.sample()
    h = view.activations("activation_2")
    assert len(h) == len(labels) == 60
    assert stats["activation_2"]["hoyer_sparsity"] == rep.hoyer_sparsity(h)
    assert stats["activation_2"]["silhouette"] == rep.silhouette(h, labels)
    assert stats["activation_2"]["cluster_perplexity"] == rep.cluster_perplexity(h, labels, num_classes=10)
    assert 0 <= values["channel_sparsity"] <= 1 and 1 <= values["cluster_perplexity"] <= 10


def test_layer_parameter_forms():
    view = _view()
    hidden = view.hidden_layers
    by_name = {layer: measures.get("davies_bouldin")(view, layer=layer) for layer in hidden}
    index = {name: i for i, name in enumerate(view.layer_names)}  # an int indexes view.layer_names
    assert measures.get("davies_bouldin")(view, layer=index[hidden[0]]) == by_name[hidden[0]]
    assert measures.get("davies_bouldin")(view, layer="first") == by_name[hidden[0]]
    assert measures.get("davies_bouldin")(view, layer="last") == by_name[hidden[-1]]
    assert measures.get("davies_bouldin")(view, layer=index[hidden[-1]] - len(index)) == by_name[hidden[-1]]
    assert measures.get("davies_bouldin")(view, layer=str(index[hidden[2]])) == by_name[hidden[2]]
    assert measures.get("davies_bouldin")(view) == pytest.approx(np.mean(list(by_name.values())))
    # any layer of the network may be named, e.g. the pooled output the PGDL winner looked at
    assert math.isfinite(measures.get("element_sparsity")(view, layer="max_pooling2d"))
    # n and the measure-specific parameters reach the statistics
    assert measures.get("cluster_purity")(view, layer="last", n=30) == rep.cluster_purity(
        view.activations(hidden[-1], 30), view.sample(30)[1], num_classes=10)
    assert measures.get("silhouette")(view, layer=index[hidden[1]], pool="avg", pca=2) == rep.silhouette(
        view.activations(hidden[1]), view.sample()[1], pool="avg", pca=2)


def test_bad_layers_give_clear_errors():
    view = _view()
    with pytest.raises(MeasureError, match=r"model 3: no layer 'bogus' \(layers: conv2d, batch_normalization, activation,"):
        measures.get("channel_sparsity")(view, layer="bogus")
    n = len(view.layer_names)
    with pytest.raises(MeasureError, match=f"model 3: layer index {n} is out of range"):
        measures.get("silhouette")(view, layer=n)
    with pytest.raises(MeasureError, match="'hoyer_sparsity' expects layer like its default 'all', got 1.5"):
        measures.get("hoyer_sparsity")(view, layer=1.5)
    with pytest.raises(MeasureError, match="no layer 'bogus'"):
        layer_statistics(view, layers=["bogus"])
    with pytest.raises(ValueError, match="unknown statistic 'sparsity'"):
        layer_statistics(view, statistics=["sparsity"])


def test_undefined_values_are_measure_errors_naming_the_layer():
    view = _view()
    with torch.no_grad():  # kill every channel of the last conv block: ReLU of a very negative shift
        view.network.batch_normalization_3.beta.fill_(-1e6)
    layer = view.hidden_layers[-1]
    assert measures.get("dead_units")(view, layer="last") == 1.0
    with pytest.raises(MeasureError, match=f"model 3: cluster_purity is undefined at layer '{layer}'"):
        measures.get("cluster_purity")(view, layer="last")
    with pytest.raises(MeasureError, match=f"model 3: davies_bouldin is undefined at layer '{layer}'"):
        measures.get("davies_bouldin")(view)
