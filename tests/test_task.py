"""Task folders: the fixture's recorded accuracies, lazy loading, grid validation, layouts, write_task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import task_loaders.task as task_module
from task_loaders import (
    ExportedModel,
    Grid,
    TaskFormatError,
    build_network,
    load_task,
    read_model_configs,
    write_task,
)

TOY_IDS = [str(i) for i in range(18)]


@pytest.fixture(scope="module")
def toy(toy_task_path):
    return load_task(toy_task_path)


@pytest.fixture(scope="module")
def toy_configs(toy_task_path) -> dict:
    return json.loads((toy_task_path / "model_configs.json").read_text())


def accuracy(network, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        correct = int((network(x).argmax(dim=1) == y).sum())
    return correct / len(y)


# ---------------------------------------------------------------------------------------------
# The fixture


def test_every_model_reproduces_its_recorded_accuracies(toy, toy_configs):
    assert toy.model_ids == TOY_IDS  # numeric order: "2" before "10"
    x, y = toy.train_split()
    xt, yt = toy.test_split()
    assert x.shape == (200, 3) and xt.shape == (100, 3) and y.dtype == torch.int64
    wrong = []
    for model_id in toy.model_ids:
        model = toy.load_model(model_id)
        assert not model.network.training
        recorded = toy_configs[model_id]["metrics"]
        got = (accuracy(model.network, x, y), accuracy(model.network, xt, yt))
        if got != (recorded["train_acc"], recorded["test_acc"]):
            wrong.append((model_id, got, recorded))
    assert not wrong, wrong


def test_initial_networks_are_loaded_and_differ_from_the_trained_ones(toy):
    model = toy.load_model("16")
    assert model.initial_network is not None and not model.initial_network.training
    trained = model.network.get_keras_weights()
    initial = model.initial_network.get_keras_weights()
    assert [w.shape for w in trained] == [w.shape for w in initial] == [(3, 256), (256,), (256, 256), (256,),
                                                                          (256, 256), (256,), (256, 2), (2,)]
    assert all(not np.array_equal(a, b) for a, b in zip(trained[::2], initial[::2]))
    x, y = toy.train_split()
    assert accuracy(model.network, x, y) == 1.0 > accuracy(model.initial_network, x, y)


def test_metadata_gaps_and_hparams(toy, toy_configs):
    for model_id in TOY_IDS:
        entry = toy_configs[model_id]
        assert toy.train_acc(model_id) == entry["metrics"]["train_acc"]
        assert toy.test_acc(model_id) == entry["metrics"]["test_acc"]
        assert toy.gap(model_id) == entry["metrics"]["train_acc"] - entry["metrics"]["test_acc"]
        assert toy.gap(f"model_{model_id}") == toy.gap(model_id)
        assert toy.hparams(model_id) == {n: s["current_value"] for n, s in entry["hparams"].items()}
    np.testing.assert_array_equal(toy.gaps(), [toy.gap(m) for m in TOY_IDS])
    assert toy.gap("16") == 1.0 - 0.98 and toy.gap("0") == 0.875 - 0.9  # 0 generalizes "negatively"
    assert toy.grid.names == ("num_units", "num_layers", "activation_function")
    assert toy.grid.values["num_units"] == (64, 128, 256) and toy.grid.size == 18
    with pytest.raises(TaskFormatError, match="no model 99"):
        toy.gap("99")


def test_load_task_is_lazy(toy_task_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("load_task must not build networks, read weights or read shards")

    monkeypatch.setattr(task_module, "read_split", forbidden)
    monkeypatch.setattr(task_module, "build_network", forbidden)
    monkeypatch.setattr(task_module, "load_network_weights", forbidden)
    monkeypatch.setattr(task_module.Task, "config", forbidden)
    task = load_task(toy_task_path)
    assert task.model_ids == TOY_IDS
    assert task.gap("3") == 0.95 - 0.96
    assert task._splits == {}
    assert "input_shape" not in vars(task)
    monkeypatch.undo()

    x, y = task.train_split()
    assert list(task._splits) == ["train"]  # the test split still unread
    assert task.train_split()[0] is x  # read once, then cached


# ---------------------------------------------------------------------------------------------
# model_configs.json validation


def linked_task(toy: Path, root: Path, configs: dict | str) -> Path:
    """A task folder whose models and data are symlinks into the fixture, with its own metrics file."""
    root.mkdir(parents=True)
    for entry in toy.iterdir():
        if entry.name.startswith("model_") and entry.is_dir() or entry.name == "dataset_1":
            (root / entry.name).symlink_to(entry, target_is_directory=True)
    text = configs if isinstance(configs, str) else json.dumps(configs, indent=1)
    (root / "model_configs.json").write_text(text)
    return root


def test_linked_copy_of_the_fixture_loads(toy_task_path, toy_configs, tmp_path):
    task = load_task(linked_task(toy_task_path, tmp_path / "toy", toy_configs))
    assert task.model_ids == TOY_IDS and task.name == "toy"


def test_incomplete_grid_names_the_missing_cell(toy_task_path, toy_configs, tmp_path):
    configs = dict(toy_configs)
    del configs["7"]  # num_units=128, num_layers=1, activation_function='tanh'
    with pytest.raises(TaskFormatError) as info:
        load_task(linked_task(toy_task_path, tmp_path / "toy", configs))
    message = str(info.value)
    assert "model_configs.json" in message and "incomplete" in message and "17 of 18" in message
    assert "num_units=128, num_layers=1, activation_function='tanh'" in message


def test_duplicate_cell(toy_task_path, toy_configs, tmp_path):
    configs = json.loads(json.dumps(toy_configs))
    configs["7"]["hparams"] = configs["6"]["hparams"]
    with pytest.raises(TaskFormatError) as info:
        load_task(linked_task(toy_task_path, tmp_path / "toy", configs))
    assert "models 6 and 7 share one grid cell" in str(info.value)


def test_duplicate_model_id(toy_task_path, toy_configs, tmp_path):
    configs = dict(toy_configs)
    configs["model_3"] = configs["3"]
    with pytest.raises(TaskFormatError, match="model id 3 appears twice"):
        read_model_configs(linked_task(toy_task_path, tmp_path / "a", configs) / "model_configs.json")
    # The same key twice in the JSON text: json.loads alone would silently keep the last entry.
    entry = json.dumps(toy_configs["3"])
    text = json.dumps(toy_configs)[:-1] + f', "3": {entry}}}'
    assert json.loads(text).keys() == toy_configs.keys()
    with pytest.raises(TaskFormatError, match="key '3' appears twice"):
        load_task(linked_task(toy_task_path, tmp_path / "b", text))


def test_current_value_not_among_possible_values(toy_task_path, toy_configs, tmp_path):
    configs = json.loads(json.dumps(toy_configs))
    configs["4"]["hparams"]["num_units"]["current_value"] = 100
    with pytest.raises(TaskFormatError) as info:
        load_task(linked_task(toy_task_path, tmp_path / "toy", configs))
    message = str(info.value)
    assert "model 4" in message and "'num_units' = 100 is not one of [64, 128, 256]" in message


def test_inconsistent_hyperparameters_between_models(toy_task_path, toy_configs, tmp_path):
    configs = json.loads(json.dumps(toy_configs))
    configs["9"]["hparams"]["num_layers"]["possible_values"] = [1, 2, 3, 4]
    with pytest.raises(TaskFormatError, match="model 9: possible values of 'num_layers'"):
        read_model_configs(linked_task(toy_task_path, tmp_path / "a", configs) / "model_configs.json")
    configs = json.loads(json.dumps(toy_configs))
    del configs["9"]["hparams"]["num_layers"]
    with pytest.raises(TaskFormatError, match="model 9: hyperparameters"):
        read_model_configs(linked_task(toy_task_path, tmp_path / "b", configs) / "model_configs.json")
    configs = json.loads(json.dumps(toy_configs))
    configs["9"]["metrics"]["test_acc"] = None
    with pytest.raises(TaskFormatError, match="model 9: metric 'test_acc'"):
        read_model_configs(linked_task(toy_task_path, tmp_path / "c", configs) / "model_configs.json")


def _entry(width, depth, acc=0.5, widths=(256, 512)):
    return {
        "hparams": {
            "convwidth": {"possible_values": list(widths), "current_value": width},
            "depth": {"possible_values": [1, 2], "current_value": depth},
        },
        "metrics": {"train_acc": acc, "test_acc": acc / 2},
    }


def test_values_compare_canonically(tmp_path):
    path = tmp_path / "model_configs.json"
    # 256.0, "256" and 256 are one value; possible_values may be spelled differently per model.
    path.write_text(json.dumps({
        "0": _entry(256.0, 1),
        "1": _entry("256", 2, widths=(256.0, "512")),
        "2": _entry(512, 1),
        "3": _entry("512.0", 2.0),
    }))
    grid, records = read_model_configs(path)
    assert grid.size == 4
    assert records["0"].hparams == {"convwidth": 256.0, "depth": 1}  # values kept as stored
    assert records["1"].hparams["convwidth"] == "256"
    assert grid.index("convwidth", 256.0) == grid.index("convwidth", "256") == grid.index("convwidth", 256) == 0
    assert grid.index("convwidth", "512.0") == 1
    assert records["3"].gap == 0.25

    # ... hence 256 and "256" in otherwise equal settings collide in one cell.
    path.write_text(json.dumps({
        "0": _entry(256, 1), "1": _entry("256", 1), "2": _entry(512, 1), "3": _entry(512, 2),
    }))
    with pytest.raises(TaskFormatError, match="models 0 and 1 share one grid cell"):
        read_model_configs(path)

    # Booleans and non-numeric strings stay distinct from numbers.
    path.write_text(json.dumps({"0": _entry(True, 1, widths=(1, True)), "1": _entry(1, 1, widths=(1, True)),
                                "2": _entry(True, 2, widths=(1, True)), "3": _entry(1, 2, widths=(1, True))}))
    assert read_model_configs(path)[0].size == 4


# ---------------------------------------------------------------------------------------------
# Where model_configs.json lives


def public_layout(toy: Path, root: Path) -> tuple[Path, Path]:
    """The public zips' layout: input_data/<task>/ and reference_data/<task>/model_configs.json."""
    task = root / "input_data" / "toy"
    task.mkdir(parents=True)
    for entry in toy.iterdir():
        if entry.is_dir():
            (task / entry.name).symlink_to(entry, target_is_directory=True)
    reference = root / "reference_data" / "toy"
    reference.mkdir(parents=True)
    (reference / "model_configs.json").symlink_to(toy / "model_configs.json")
    return task, reference


def test_separate_reference_tree_is_found(toy_task_path, toy, tmp_path, monkeypatch):
    task_dir, reference = public_layout(toy_task_path, tmp_path / "public_data")
    assert not (task_dir / "model_configs.json").exists()
    task = load_task(task_dir)
    assert task.metrics_path == reference / "model_configs.json"
    assert task.model_ids == TOY_IDS and task.records == toy.records
    assert task.train_split()[0].shape == (200, 3)
    assert accuracy(task.load_model("5").network, *task.test_split()) == toy.test_acc("5")
    # Relative paths too: from inside input_data, and from inside the task folder itself.
    monkeypatch.chdir(task_dir.parent)
    assert load_task("toy").records == toy.records
    monkeypatch.chdir(task_dir)
    assert load_task(".").records == toy.records


def test_reference_argument(toy_task_path, toy, tmp_path):
    task_dir = tmp_path / "models" / "toy"
    task_dir.mkdir(parents=True)
    for entry in toy_task_path.iterdir():
        if entry.is_dir():
            (task_dir / entry.name).symlink_to(entry, target_is_directory=True)
    elsewhere = tmp_path / "metrics"
    elsewhere.mkdir()
    (elsewhere / "model_configs.json").symlink_to(toy_task_path / "model_configs.json")
    with pytest.raises(TaskFormatError, match="no model_configs.json"):
        load_task(task_dir)
    for reference in (elsewhere, elsewhere / "model_configs.json", str(elsewhere)):
        task = load_task(task_dir, reference=reference)
        assert task.records == toy.records and task.metrics_path == elsewhere / "model_configs.json"
    with pytest.raises(TaskFormatError, match="no model_configs.json"):
        load_task(task_dir, reference=tmp_path)


def test_missing_model_folder(toy_task_path, toy_configs, tmp_path):
    task_dir = linked_task(toy_task_path, tmp_path / "toy", toy_configs)
    (task_dir / "model_11").unlink()
    with pytest.raises(TaskFormatError, match="model_11: model folder of model 11 not found"):
        load_task(task_dir)
    with pytest.raises(TaskFormatError, match="task folder not found"):
        load_task(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------
# write_task


def conv_layers(width: int) -> list[dict]:
    return [
        {"layer_name": "Conv2D", "filters": width, "kernel_size": 3, "padding": "same", "strides": 2},
        {"layer_name": "BatchNormalization"},
        {"layer_name": "ReLU"},
        {"layer_name": "MaxPooling2D", "pool_size": 2, "padding": "same"},
        {"layer_name": "Flatten"},
        {"layer_name": "Dense", "units": 3},
    ]


def mlp_layers(width: int) -> list[dict]:
    return [
        {"layer_name": "Flatten"},
        {"layer_name": "Dense", "units": width, "activation": "tanh"},
        {"layer_name": "Dropout", "rate": 0.5},
        {"layer_name": "Dense", "units": 3},
    ]


def randomize(network, seed: int):
    """Give every Keras weight (BatchNorm statistics included) distinct random values."""
    rng = np.random.default_rng(seed)
    for layer in network.children():
        arrays = [rng.standard_normal(shape).astype(np.float32) for shape in layer.keras_weight_shapes()]
        if layer.keras_class == "BatchNormalization":
            arrays[-1] = np.abs(arrays[-1]) + 0.1  # the moving variance
        if arrays:
            layer.set_keras_weights(arrays)
    return network


def test_write_task_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    input_shape = (7, 6, 2)  # H, W, C
    x_train = torch.from_numpy(rng.standard_normal((30, 2, 7, 6)).astype(np.float32))  # NCHW
    y_train = torch.from_numpy(rng.integers(0, 3, 30))
    x_test = torch.from_numpy(rng.standard_normal((20, 2, 7, 6)).astype(np.float32))
    y_test = torch.from_numpy(rng.integers(0, 3, 20))

    grid = Grid(("arch", "width"), {"arch": ("conv", "mlp"), "width": (4, 8)})
    settings = {"3": ("conv", 4), "20": ("conv", 8), "7": ("mlp", 4), "100": ("mlp", 8)}
    models = {}
    for seed, (model_id, (arch, width)) in enumerate(settings.items()):
        layers = conv_layers(width) if arch == "conv" else mlp_layers(width)
        network = randomize(build_network(layers, input_shape), seed)
        initial = None if model_id == "100" else randomize(build_network(layers, input_shape), 100 + seed)
        models[model_id] = ExportedModel(
            {"arch": arch, "width": width}, accuracy(network, x_train, y_train), accuracy(network, x_test, y_test),
            network, initial,
        )
    conv = models["20"].network
    assert conv.batch_normalization.moving_variance.min() > 0 and conv.batch_normalization.moving_mean.abs().sum() > 0

    path = write_task(tmp_path / "zoo", grid, models, (x_train, y_train), (x_test, y_test), records_per_shard=4)
    assert len(list((path / "dataset_1" / "train").glob("shard_*.tfrecord"))) == 8

    task = load_task(path)
    assert task.model_ids == ["3", "7", "20", "100"]
    assert task.grid == grid
    xl, yl = task.train_split()
    xtl, ytl = task.test_split()
    assert torch.equal(xl, x_train) and torch.equal(yl, y_train) and yl.dtype == torch.int64
    assert torch.equal(xtl, x_test) and torch.equal(ytl, y_test)
    for model_id, exported in models.items():
        assert task.hparams(model_id) == exported.hparams
        assert task.train_acc(model_id) == exported.train_acc
        assert task.test_acc(model_id) == exported.test_acc
        loaded = task.load_model(model_id)
        assert loaded.network.layer_config == exported.network.layer_config
        for a, b in zip(loaded.network.get_keras_weights(), exported.network.get_keras_weights(), strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        with torch.no_grad():
            assert torch.equal(loaded.network(xl), exported.network(x_train))
            assert torch.equal(loaded.network(xtl), exported.network(x_test))
        assert accuracy(loaded.network, xl, yl) == task.train_acc(model_id)
        if exported.initial_network is None:
            assert loaded.initial_network is None
        else:
            for a, b in zip(loaded.initial_network.get_keras_weights(),
                            exported.initial_network.get_keras_weights(), strict=True):
                assert np.array_equal(a, b)


def test_unreadable_files_are_task_format_errors(toy_task_path, toy_configs, tmp_path):
    # A directory where a file should be fails open() as a file without read permission would.
    task_dir = linked_task(toy_task_path, tmp_path / "toy", toy_configs)
    (task_dir / "model_2").unlink()
    (task_dir / "model_2" / "config.json").mkdir(parents=True)
    task = load_task(task_dir)
    with pytest.raises(TaskFormatError, match="model_2/config.json: cannot read"):
        task.load_model("2")
    (tmp_path / "configs.json").mkdir()
    with pytest.raises(TaskFormatError, match="configs.json: cannot read"):
        read_model_configs(tmp_path / "configs.json")
