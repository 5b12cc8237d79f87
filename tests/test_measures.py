"""The registry, the model view, and the two foundation measures against independent computations."""

import h5py
import numpy as np
import pytest
import torch

import measures
from benchmark.running.runner import model_view
from measures import MeasureError, ModelView
from task_loaders import build_network, load_task


def _h5_arrays(path):
    """Every weight array of a Keras-2 file, read with h5py alone, in layer then weight order."""
    out = []
    with h5py.File(path, "r") as f:
        for layer in f.attrs["layer_names"]:
            group = f[layer]
            for name in group.attrs["weight_names"]:
                out.append(np.asarray(group[name], dtype=np.float64))
    return out


@pytest.fixture(scope="module")
def toy(toy_task_path):
    return load_task(toy_task_path)


def test_weight_norm_matches_competition_sample_submission(toy):
    # SCORING.md: the sample submission gives model_0 9.1454, model_1 10.7899, model_2 78.7576.
    expected = {"0": 9.1454, "1": 10.7899, "2": 78.7576}
    for model_id, value in expected.items():
        assert measures.get("weight_norm")(model_view(toy, model_id)) == pytest.approx(value, abs=1e-4)  # printed to 4 decimals


def test_weight_norm_and_distance_from_init_equal_h5py_sums(toy, toy_task_path):
    for model_id in toy.model_ids:
        final = _h5_arrays(toy_task_path / f"model_{model_id}" / "weights.hdf5")
        init = _h5_arrays(toy_task_path / f"model_{model_id}" / "weights_init.hdf5")
        view = model_view(toy, model_id)
        assert measures.get("weight_norm")(view) == pytest.approx(sum((w**2).sum() for w in final), rel=1e-9)
        assert measures.get("distance_from_init")(view) == pytest.approx(
            sum(((w - w0) ** 2).sum() for w, w0 in zip(final, init)), rel=1e-9
        )


def test_weight_norm_counts_batchnorm_statistics_like_get_weights():
    net = build_network(
        [{"layer_name": "Dense", "units": 2, "use_bias": False}, {"layer_name": "BatchNormalization"}], [3]
    )
    net.set_keras_weights([np.full((3, 2), 0.5, np.float32), np.full(2, 2.0, np.float32),
                           np.full(2, 1.0, np.float32), np.full(2, 3.0, np.float32), np.full(2, 4.0, np.float32)])
    view = ModelView(net, (torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64)))
    # kernel 6 * 0.25 + gamma 2 * 4 + beta 2 * 1 + moving mean 2 * 9 + moving variance 2 * 16
    assert measures.get("weight_norm")(view) == pytest.approx(1.5 + 8 + 2 + 18 + 32)


def test_distance_from_init_needs_initial_weights():
    net = build_network([{"layer_name": "Dense", "units": 2}], [3])
    view = ModelView(net, (torch.zeros(1, 3), torch.zeros(1, dtype=torch.int64)), model_id="7")
    with pytest.raises(MeasureError, match="model 7: distance_from_init needs initial weights"):
        measures.get("distance_from_init")(view)


def test_registry_decorator_and_clashes():
    @measures.measure("test_registry_tmp", source="this test")
    def tmp(view, scale: float = 2.0):
        """Twice the number of training samples."""
        return scale * view.num_train

    try:
        entry = measures.get("test_registry_tmp")
        assert "test_registry_tmp" in measures.available()
        assert entry.description == "Twice the number of training samples."
        assert entry.params == {"scale": 2.0}
        view = ModelView(build_network([{"layer_name": "Dense", "units": 2}], [3]),
                         (torch.zeros(5, 3), torch.zeros(5, dtype=torch.int64)))
        assert entry(view) == 10.0 and entry(view, scale=1.0) == 5.0
        with pytest.raises(MeasureError, match="has no parameter 'bogus'"):
            entry(view, bogus=1)

        with pytest.raises(MeasureError, match="registered twice: by .*tmp and by .*other"):
            @measures.measure("test_registry_tmp", source="elsewhere")
            def other(view):
                return 0.0
    finally:
        measures.registry._REGISTRY.pop("test_registry_tmp", None)
    with pytest.raises(MeasureError, match="unknown measure 'test_registry_tmp'"):
        measures.get("test_registry_tmp")


def test_model_view_hidden_layers_compose_to_logits():
    net = build_network(
        [{"layer_name": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
         {"layer_name": "Flatten"}, {"layer_name": "Dense", "units": 5, "activation": "tanh"},
         {"layer_name": "Dense", "units": 3}], [6, 6, 1])
    x = torch.randn(7, 1, 6, 6)
    view = ModelView(net, (x, torch.zeros(7, dtype=torch.int64)))
    assert view.layer_names == ["conv2d", "flatten", "dense", "dense_1"]
    assert view.num_classes == 3
    h = view.forward(x, "dense")
    assert h.shape == (7, 5) and float(h.abs().max()) <= 1.0  # post-tanh
    torch.testing.assert_close(view.forward(h, after="dense"), view.forward(x), rtol=0, atol=0)
    # per-stream seeds: equal for equal keys, different otherwise
    a, b = view.rng("m").random(3), view.rng("m").random(3)
    assert np.array_equal(a, b) and not np.array_equal(a, view.rng("other").random(3))
