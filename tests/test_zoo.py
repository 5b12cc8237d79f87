"""In-house zoos: built PGDL task folders that load, reproduce their accuracies, and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.running.executor import LocalExecutor
from benchmark.data.zoo_builder import build_zoo
from task_loaders import build_network, load_task
from task_loaders.architectures import strip_batchnorm
from task_loaders.keras_weights import read_weights
from task_loaders.training import accuracy, keras_initialize
from task_loaders.zoo import RECIPES, finished_models, get_recipe, prepare_zoo, train_zoo_model

REPO = Path(__file__).resolve().parents[1]
FASHION = Path(os.environ.get("PGDL_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))


def check_reproduces(task_dir: Path) -> None:
    task = load_task(task_dir)  # validates the complete grid
    (x_train, y_train), (x_test, y_test) = task.train_split(), task.test_split()
    for model_id in task.model_ids:
        network = task.load_model(model_id).network
        assert accuracy(network, x_train, y_train) == task.train_acc(model_id), model_id
        assert accuracy(network, x_test, y_test) == task.test_acc(model_id), model_id


@pytest.fixture(scope="module")
def digits_tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "digits-tiny"
    return build_zoo("digits-tiny", out, LocalExecutor(workers=2, threads_per_worker=1, budget=600), progress=False)


def test_built_zoo_loads_and_reproduces_recorded_accuracies(digits_tiny):
    recipe = get_recipe("digits-tiny")
    task = load_task(digits_tiny)
    assert len(task.model_ids) == len(recipe.models()) == 8
    assert list(task.grid.names) == ["convwidth", "dropout", "batch_size"]
    assert task.input_shape == (8, 8, 1)
    x, y = task.train_split()
    assert x.shape == (300, 1, 8, 8) and torch.bincount(y).tolist() == [30] * 10
    check_reproduces(digits_tiny)
    for model_id, hparams in recipe.models():
        assert task.hparams(model_id) == hparams
        assert (digits_tiny / f"model_{model_id}" / "weights_init.hdf5").is_file()


def test_same_recipe_and_seed_give_bit_identical_weight_files(digits_tiny, tmp_path):
    recipe = get_recipe("digits-tiny")
    copy = prepare_zoo(recipe, tmp_path / "again")
    for model_id in ("0", "5"):
        train_zoo_model(recipe, model_id, copy)
        for name in ("weights.hdf5", "weights_init.hdf5"):
            a = (digits_tiny / f"model_{model_id}" / name).read_bytes()
            b = (copy / f"model_{model_id}" / name).read_bytes()
            assert a == b, (model_id, name)


def test_bn_twins_differ_only_in_batchnorm():
    bn, nobn = RECIPES["digits-bn"], RECIPES["digits-nobn"]
    assert bn.twin == "digits-nobn" and nobn.twin == "digits-bn"
    assert [h for _, h in bn.models()] == [h for _, h in nobn.models()]
    for (_, hparams) in bn.models()[:6]:
        with_bn, without = bn.layers(hparams, (8, 8, 1), 10), nobn.layers(hparams, (8, 8, 1), 10)
        assert any(layer["layer_name"] == "BatchNormalization" for layer in with_bn)
        assert strip_batchnorm(with_bn) == without
        assert bn.train_config(hparams) == nobn.train_config(hparams)  # same seed, same schedule
        nets = []
        for layers, recipe in ((with_bn, bn), (without, nobn)):
            net = build_network(layers, (8, 8, 1))
            keras_initialize(net, torch.Generator().manual_seed(recipe.model_seed(hparams)))
            nets.append([w for n, m in net.named_children() if m.keras_class in ("Conv2D", "Dense")
                         for w in m.get_keras_weights()])
        assert all(np.array_equal(a, b) for a, b in zip(*nets)) and len(nets[0]) == len(nets[1])


def test_bn_axis_recipe_pairs_share_seeds():
    recipe = RECIPES["digits-bnaxis"]
    by_rest = {}
    for _, hparams in recipe.models():
        rest = tuple((k, v) for k, v in hparams.items() if k != "batchnorm")
        by_rest.setdefault(rest, set()).add(recipe.model_seed(hparams))
    assert all(len(seeds) == 1 for seeds in by_rest.values()) and len(by_rest) == 8


def test_killed_build_resumes_without_retraining(tmp_path):
    out = tmp_path / "digits-tiny"
    cmd = [sys.executable, "-m", "benchmark", "zoo", "build", "digits-tiny", "--out", str(out), "--workers", "1", "-q"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    recipe = get_recipe("digits-tiny")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if out.exists() and len(finished_models(recipe, out)) >= 2:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = finished_models(recipe, out)
    assert 2 <= len(done) < 8, done
    stamps = {m: (out / f"model_{m}" / "weights.hdf5").stat().st_mtime_ns for m in done}
    assert not (out / "model_configs.json").exists()
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "digits-tiny: 8 models" in result.stdout
    assert {m: (out / f"model_{m}" / "weights.hdf5").stat().st_mtime_ns for m in done} == stamps
    check_reproduces(out)


HAVE_FASHION = any((FASHION / f"train-images-idx3-ubyte{ext}").exists() for ext in ("", ".gz"))


@pytest.mark.skipif(not HAVE_FASHION and not os.environ.get("PGDL_REQUIRE_FASHION"),
                    reason=f"Fashion-MNIST IDX files not in {FASHION} (apt-get install dataset-fashion-mnist)")
def test_fashion_zoo_end_to_end_from_real_files(tmp_path):
    out = tmp_path / "fashion-tiny"
    build = subprocess.run([sys.executable, "-m", "benchmark", "zoo", "build", "fashion-tiny", "--out", str(out), "-q"],
                           cwd=REPO, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    task = load_task(out)
    assert task.input_shape == (28, 28, 1) and len(task.model_ids) == 8
    check_reproduces(out)
    score = subprocess.run([sys.executable, "-m", "benchmark", "score", str(out), "-m", "weight_norm", "--json", "-q",
                            "--store", str(tmp_path / "s.db"), "--out", str(tmp_path / "p")],
                           cwd=REPO, capture_output=True, text=True)
    assert score.returncode == 0, score.stderr
    entry = json.loads(score.stdout)["tasks"]["fashion-tiny"]["weight_norm"]
    expected = {f"model_{m}": float(sum((w.astype(np.float64) ** 2).sum() for w in read_weights(out / f"model_{m}" / "weights.hdf5")))
                for m in task.model_ids}
    assert entry["predictions"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits-bn", "digits-nobn"])
def test_default_zoos_reproduce_their_accuracies(name):
    """The embedded default zoos as users get them (built into the cache on first use): ~2 min each."""
    out = build_zoo(name, progress=False)
    check_reproduces(out)
    gaps = load_task(out).gaps()
    assert len(np.unique(np.round(gaps, 6))) >= 16  # varied enough to rank
