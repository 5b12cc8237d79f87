"""`pgdl-bench leaderboard --suite pgdl`: the tasks under a data root, the competition's order, its task average."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.data.predict_files import read_predict
from tests.reference_cmi import models_from_task, reference_cmi
from task_loaders import ExportedModel, Grid, build_network, load_task, write_task
from task_loaders.training import keras_initialize


def synthetic_task(path: Path, grid: Grid, seed: int) -> Path:
    """Tiny MLPs on 3 features, one per grid cell, with random weights and random accuracies."""
    rng = np.random.default_rng(seed)
    models = {}
    for i, cell in enumerate(itertools.product(*(grid.values[n] for n in grid.names))):
        layers = [{"layer_name": "Dense", "units": 4 + i % 3, "activation": "relu"}, {"layer_name": "Dense", "units": 2}]
        network, initial = build_network(layers, (3,)), build_network(layers, (3,))
        keras_initialize(network, torch.Generator().manual_seed(seed * 1000 + i))
        keras_initialize(initial, torch.Generator().manual_seed(seed * 1000 + i + 500))
        train_acc = float(rng.uniform(0.8, 1.0))
        models[str(10 + 3 * i)] = ExportedModel(dict(zip(grid.names, cell)), train_acc,
                                                train_acc - float(rng.uniform(0.0, 0.3)), network, initial)
    x = torch.from_numpy(rng.standard_normal((12, 3)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, 12))
    return write_task(path, grid, models, (x, y), (x[:6], y[:6]))


@pytest.fixture(scope="module")
def root(toy_task_path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pgdl_root")
    # the public zips' layout: metrics in the sibling reference_data tree
    small = synthetic_task(root / "public_data" / "input_data" / "task2_v1",
                           Grid(("units", "lr"), {"units": (4, 8), "lr": (0.1, 0.01, 0.001)}), seed=1)
    (root / "public_data" / "reference_data" / "task2_v1").mkdir(parents=True)
    (small / "model_configs.json").rename(root / "public_data" / "reference_data" / "task2_v1" / "model_configs.json")
    # a 2^5 grid: the size of official task 8's, so its published rows apply
    synthetic_task(root / "phase_two_data" / "task8", Grid(tuple("abcde"), {n: (0, 1) for n in "abcde"}), seed=2)
    os.symlink(toy_task_path, root / "toy")
    return root


def test_suite_leaderboard_is_the_competitions_task_average(root, tmp_path, capsys):
    out = tmp_path / "lb"
    args = ["leaderboard", "--suite", "pgdl", "--root", root, "-m", "weight_norm", "-m", "distance_from_init",
            "--backend", "serial", "--store", tmp_path / "s.sqlite", "--out", out, "-q"]
    code = main([str(a) for a in args])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    board = json.loads((out / "leaderboard.json").read_text())
    names = ["task2_v1", "task8", "pgdl_toy_data"]  # the competition's order, then the others
    assert [t["name"] for t in board["tasks"]] == names
    assert [t["official"] for t in board["tasks"]] == [None, "task8", None]  # task2_v1 has 6 models, not 54
    paths = {"task2_v1": root / "public_data" / "input_data" / "task2_v1", "task8": root / "phase_two_data" / "task8",
             "pgdl_toy_data": root / "toy"}
    lines = stdout.splitlines()
    assert lines[0].split() == ["measure", *names, "task", "average", "(CMI", "x100)"]
    for measure in ("weight_norm", "distance_from_init"):
        row = next(r for r in board["rows"] if r["measure"] == measure)
        # independently: each task's CMI by the plain-loop transcription of the official scorer, on the
        # .predict files the leaderboard wrote, then the official program's task_average_score
        scores = []
        for name in names:
            task = load_task(paths[name])
            predictions = read_predict(out / "predictions" / measure / f"{name}.predict")
            scores.append(reference_cmi(predictions, models_from_task(task))[0])
        expected = sum(scores) / float(len(scores))
        expected *= 100.0
        assert row["mean_cmi_x100"] == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert 0 < row["mean_cmi_x100"] < 100
        shown = next(line for line in lines if line.startswith(measure + " "))
        printed = shown.split()
        assert printed[0] == measure and len(printed) == len(scores) + 2
        # two decimals as printed (a CMI of -1e-17 may print as 0.00 or -0.00)
        assert [float(v) for v in printed[1:]] == pytest.approx([100 * s for s in scores] + [expected], abs=0.0051)
    # the published rows of task 8 (and only task 8's column) are there
    dbi = next(r for r in board["rows"] if r["reference"] and r["measure"].startswith("DBI x LWM"))
    assert dbi["tasks"]["task8"]["cmi_x100"] == 9.24 and dbi["tasks"]["task2_v1"]["cmi_x100"] is None
    published = next(line for line in lines if line.startswith("DBI x LWM") and "[published]" in line)
    assert published.split()[-4:] == ["-", "9.24", "-", "-"]  # task 8's value only, no average


def test_suite_errors_are_one_line(root, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["leaderboard", "--suite", "pgdl", "--root", str(empty), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no PGDL task folders found" in err and "pgdl-bench data pgdl all" in err
    assert main(["leaderboard", "--suite", "pgdl", "--root", str(root), str(root / "toy"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give no TASK folders" in err
