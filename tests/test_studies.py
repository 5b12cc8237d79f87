"""``pgdl-bench study``: the pieces checked against direct computations, and one quick smoke run per study.

The smoke runs use micro recipes (a few tiny models on a hundred MNIST digits) in this process
(``workers=0``); ``test_studies_small.py`` (slow) runs the studies' small recipes through the command line.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

import study_checks
from benchmark.studies import STUDIES, run_study
from benchmark.studies import bn, fragmentation_dd, fragmentation_layers, fragmentation_training
from benchmark.studies import fragmentation_weight_norm as weight_norm
from benchmark.studies.common import partial_spearman, spearman, subset_arrays, trained_models, zoo_scores
from task_loaders import zoo
from task_loaders.architectures import mlp, vgg
from task_loaders.keras_layers import build_network
from task_loaders.datasets import flip_labels, load_mnist
from task_loaders.training import keras_initialize

MICRO = {
    "micro-vgg": zoo.Recipe("micro-vgg", "test", dataset="mnist", architecture="vgg",
                            grid=(("convwidth", (2, 3)), ("batch_size", (32, 64))), fixed=(("depth", 1),),
                            epochs=2, n_train=120, n_test=100),
    "micro-mlp": zoo.Recipe("micro-mlp", "test", dataset="mnist", architecture="mlp", grid=(("width", (4, 16, 64)),),
                            fixed=(("label_noise", 0.2), ("learning_rate", 0.05)), epochs=3, n_train=120, n_test=100),
    "micro-cnn4": zoo.Recipe("micro-cnn4", "test", dataset="mnist", architecture="cnn4",
                             grid=(("batchnorm", (False, True)), ("seed", (0, 1))),
                             fixed=(("convwidth", 2), ("learning_rate", 0.01)), epochs=1, n_train=120, n_test=100),
}


@pytest.fixture
def micro(monkeypatch, tmp_path, mnist_dir):
    """Micro zoo recipes and study recipes, a private bench home; returns the output folder's parent."""
    monkeypatch.setenv("PGDL_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PGDL_MNIST", str(mnist_dir))
    monkeypatch.setattr(zoo, "RECIPES", {**zoo.RECIPES, **MICRO})
    monkeypatch.setitem(fragmentation_dd.RECIPES, "micro", fragmentation_dd.Recipe("micro-mlp", 6, 4))
    monkeypatch.setitem(fragmentation_layers.RECIPES, "micro", fragmentation_layers.Recipe("micro-vgg", 6, 3))
    monkeypatch.setitem(fragmentation_training.RECIPES, "micro", fragmentation_training.Recipe("micro-vgg", 2, 6, 3))
    monkeypatch.setitem(weight_norm.RECIPES, "micro", weight_norm.Recipe("micro-vgg", 6, 3, (0.5, 3.0, 4.0), 1))
    monkeypatch.setitem(bn.RECIPES, "micro", bn.Recipe("micro-cnn4", 60))
    return tmp_path


def _run(name: str, tmp_path: Path) -> Path:
    out = tmp_path / name
    run_study(name, "micro", out, progress=False, workers=0, store=str(tmp_path / "store.sqlite"))
    return out


# -- smoke runs, one per study ----------------------------------------------------------------------


def test_fragmentation_dd_smoke(micro):
    data = study_checks.check_dd(_run("fragmentation-dd", micro), "micro-mlp")
    assert data["label_noise"] == 0.2


def test_fragmentation_weight_norm_smoke(micro):
    data = study_checks.check_weight_norm(_run("fragmentation-weight-norm", micro), "micro-vgg")
    assert set(data["rescaling"]["model_" + weight_norm.spread_models(study_checks.zoo("micro-vgg"), 1)[0]]
               ["by_factor"]) == {"1", "0.5", "3", "4"}


def test_fragmentation_training_smoke(micro):
    study_checks.check_training(_run("fragmentation-training", micro), "micro-vgg")


def test_fragmentation_layers_smoke(micro):
    data = study_checks.check_layers(_run("fragmentation-layers", micro), "micro-vgg")
    assert list(data["layers"]) == ["input", "hidden 1", "hidden 2", "hidden 3"]  # conv, conv, dense


def test_bn_smoke_and_resume_from_the_store(micro):
    out = _run("bn", micro)
    study_checks.check_bn(out, "micro-cnn4")
    first = (out / "results.json").read_text()
    (out / "results.json").unlink()
    # a rerun computes nothing: every value comes back from the results store
    import sqlite3

    before = sqlite3.connect(micro / "store.sqlite").execute("SELECT count(*), max(created) FROM results").fetchone()
    _run("bn", micro)
    after = sqlite3.connect(micro / "store.sqlite").execute("SELECT count(*), max(created) FROM results").fetchone()
    assert before == after
    assert (out / "results.json").read_text() == first


# -- the pieces -----------------------------------------------------------------------------------------


def test_rescaling_preserves_the_function_exactly_for_powers_of_two():
    layers = vgg((8, 8, 1), 10, width=3, depth=1)
    net = build_network(layers, (8, 8, 1))
    keras_initialize(net, torch.Generator().manual_seed(0))
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        reference = net(x)
        for c in (0.25, 2.0, 8.0):
            copy = build_network(layers, (8, 8, 1))
            copy.load_state_dict(net.state_dict())
            weight_norm.rescale(copy, 0, c)  # the two convs
            assert torch.equal(copy(x), reference)
            first, second = (m.conv for m in weight_norm._weight_layers(copy)[:2])
            original = [m.conv for m in weight_norm._weight_layers(net)[:2]]
            assert torch.equal(first.weight, original[0].weight * c) and torch.equal(first.bias, original[0].bias * c)
            assert torch.equal(second.weight, original[1].weight / c) and torch.equal(second.bias, original[1].bias)
        copy = build_network(layers, (8, 8, 1))
        copy.load_state_dict(net.state_dict())
        torch.testing.assert_close(weight_norm.rescale(copy, 1, 3.0)(x), reference, rtol=1e-5, atol=1e-6)  # conv, dense


def test_rescaling_refuses_batchnorm_and_a_last_layer():
    net = build_network(vgg((8, 8, 1), 10, width=2, depth=1, batchnorm=True), (8, 8, 1))
    with pytest.raises(ValueError, match="BatchNorm"):
        weight_norm.rescale(net, 0, 2.0)
    net = build_network(mlp((8, 8, 1), 10, width=4), (8, 8, 1))
    with pytest.raises(ValueError, match="no next weight layer"):
        weight_norm.rescale(net, 1, 2.0)


def test_partial_spearman_matches_the_residual_definition_and_scipy():
    rng = np.random.default_rng(0)
    z = rng.normal(size=40)
    x = z + rng.normal(size=40)
    y = z + 0.5 * x + rng.normal(size=40)
    r, p = partial_spearman(x, y, z)
    ranks = [stats.rankdata(v) for v in (x, y, z)]
    design = np.column_stack([np.ones(40), ranks[2]])
    residual = [v - design @ np.linalg.lstsq(design, v, rcond=None)[0] for v in ranks[:2]]
    assert r == pytest.approx(stats.pearsonr(*residual).statistic, abs=1e-12)
    t = r * math.sqrt(37 / (1 - r * r))
    assert p == pytest.approx(2 * stats.t.sf(abs(t), 37), rel=1e-12)
    # controlling for an unrelated variable barely changes Spearman's rho
    assert partial_spearman(x, y, rng.normal(size=40))[0] == pytest.approx(spearman(x, y), abs=0.1)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


class _Zoo:
    """A task stand-in: four models on a grid of two hyperparameters, one of them diverged."""

    model_ids = ["0", "1", "2", "3"]
    accs = {"0": 0.9, "1": 0.4, "2": 0.3, "3": 0.8}  # model 2 = always the most common label (3 of 10)
    gaps_ = {"0": 0.1, "1": 0.05, "2": -0.02, "3": 0.2}

    class grid:
        names = ["a", "b"]
        values = {"a": [1, 2], "b": [10, 20]}

    def train_split(self):
        return None, torch.tensor([0, 0, 0, 1, 2, 3, 4, 5, 6, 7])

    def train_acc(self, m):
        return self.accs[m]

    def gap(self, m):
        return self.gaps_[m]

    def gaps(self):
        return np.array([self.gaps_[m] for m in self.model_ids])

    def hparams(self, m):
        return {"a": [1, 2][int(m) % 2], "b": [10, 20][int(m) // 2]}


def test_trained_models_leave_out_a_model_no_better_than_the_constant_guess():
    zoo_ = _Zoo()
    assert trained_models(zoo_) == ["0", "1", "3"]
    arrays = subset_arrays(zoo_, ["0", "3"])
    assert arrays.keys == ["model_0", "model_3"] and arrays.gaps.tolist() == [0.1, 0.2]
    assert {k: v.tolist() for k, v in arrays.codes.items()} == {"a": [0, 1], "b": [0, 1]}
    # a measure undefined (NaN) on model 1 is scored over models 0 and 3 only; they order as the gaps do
    scored = zoo_scores(zoo_, ["0", "1", "3"], {"0": 1.0, "1": math.nan, "2": 5.0, "3": 2.0})
    assert scored["n"] == 2 and scored["kendall_tau"] == pytest.approx(1.0) and scored["spearman"] == pytest.approx(1.0)
    assert math.isnan(zoo_scores(zoo_, ["0"], {"0": 1.0})["cmi"])


def test_double_descent_shape():
    widths = [1, 2, 4, 8, 16, 32]
    found = fragmentation_dd.double_descent(widths, [0.5, 0.3, 0.4, 0.45, 0.3, 0.25], threshold_index=3)
    assert found == {"under_min_width": 2, "peak_width": 8, "over_min_width": 32, "under_min": 0.3, "peak": 0.45,
                     "over_min": 0.25, "double_descent": True}
    flat = fragmentation_dd.double_descent(widths, [0.5, 0.4, 0.35, 0.3, 0.29, 0.28], threshold_index=3)
    assert flat["double_descent"] is False


def test_flip_labels_changes_exactly_the_fraction_to_other_classes():
    labels = np.arange(1000) % 10
    noisy = flip_labels(labels, 0.2, 10, seed=3)
    assert int(np.sum(noisy != labels)) == 200
    assert noisy.min() >= 0 and noisy.max() <= 9
    assert np.array_equal(noisy, flip_labels(labels, 0.2, 10, seed=3))
    with pytest.raises(ValueError, match="label noise"):
        flip_labels(labels, 1.5, 10, seed=0)


def test_load_mnist_fixture_split(mnist_dir):
    from task_loaders.datasets import read_idx

    data = load_mnist(mnist_dir)
    images = read_idx(mnist_dir / "mnist10k-images-idx3-ubyte.gz")
    labels = read_idx(mnist_dir / "mnist10k-labels-idx1-ubyte.gz")
    assert data.x_train.shape == (8000, 1, 28, 28) and data.x_test.shape == (2000, 1, 28, 28)
    assert torch.equal(data.x_test[5, 0], torch.from_numpy(images[8005].astype(np.float32) / 255))
    assert data.y_train.tolist() == labels[:8000].tolist()
    # class counts from the fixture's SOURCE.md
    counts = np.bincount(np.concatenate([data.y_train.numpy(), data.y_test.numpy()]))
    assert counts.tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


def test_load_mnist_missing_folder_says_how(tmp_path):
    from task_loaders import DatasetNotFound

    with pytest.raises(DatasetNotFound, match="MNIST not found in .*mnist10k"):
        load_mnist(tmp_path)


def test_study_cli_lists_every_study_and_rejects_bad_input(tmp_path, capsys):
    from benchmark.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["study", "--help"])
    assert exit_info.value.code == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in STUDIES)
    assert main(["study", "fragmentation-dd", "--recipe", "huge", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown recipe 'huge' (recipes: full, small)" in err
    with pytest.raises(SystemExit):
        main(["bn-study", "--help"])  # the former name, with the same options
    assert "--samples" in capsys.readouterr().out


def test_cifar10_recipe_without_data_says_how(tmp_path, monkeypatch, capsys):
    from benchmark.cli import main

    monkeypatch.setenv("PGDL_BENCH_HOME", str(tmp_path / "home"))
    assert main(["study", "bn", "--recipe", "cifar10-vgg16", "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CIFAR-10 needs a folder" in err


def test_per_position_implicit_clusters_by_hand():
    from measures.stats import representations as rep

    h = torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]]],
                      [[[2.0, 0.0]], [[0.0, 3.0]]],
                      [[[0.0, 1.0]], [[0.0, 0.5]]]])  # (N=3, C=2, 1, 2)
    y = [0, 1, 1]
    active = rep.channel_activity(h, reduce="none")
    assert active.tolist() == [[True, False, False, False], [True, False, False, True], [False, True, False, True]]
    clusters = rep.implicit_clusters(h, y, num_classes=2, reduce="none")
    assert clusters["live"].tolist() == [True, True, False, True]
    assert clusters["size"].tolist() == pytest.approx([2 / 3, 1 / 3, 0, 2 / 3])
    assert np.allclose(clusters["purity"][[0, 1, 3]], [0.5, 1.0, 1.0])
    # per channel (max > 0) both channels fire on two samples: the coarser reading
    assert rep.implicit_clusters(h, y, num_classes=2)["size"].tolist() == pytest.approx([1.0, 2 / 3])
    assert rep.cluster_purity(h, y, reduce="none") == pytest.approx((0.5 + 1.0 + 1.0) / 3)
