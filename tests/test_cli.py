"""The command line end to end on the real toy task: score, .predict files, evaluate, measures."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.reference_cmi import models_from_task, reference_cmi
from task_loaders import load_task


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_score_json_gives_official_cmi(toy_task_path, tmp_path):
    out = run_cli("score", toy_task_path, "-m", "weight_norm", "-m", "distance_from_init", "--json", "-q",
                  "--out", tmp_path / "pred")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    task = load_task(toy_task_path)
    entries = result["tasks"]["pgdl_toy_data"]
    assert set(entries) == {"weight_norm", "distance_from_init"}
    models = models_from_task(task)
    for name, entry in entries.items():
        assert set(entry["predictions"]) == {f"model_{m}" for m in task.model_ids}
        expected, _ = reference_cmi(entry["predictions"], models)
        assert abs(entry["cmi"] - expected) <= 1e-9
        # the written .predict file holds the same predictions, and `evaluate` gives the same score
        predict_file = tmp_path / "pred" / name / "pgdl_toy_data.predict"
        assert json.loads(predict_file.read_text()) == entry["predictions"]
        ev = run_cli("evaluate", toy_task_path, predict_file, "--json")
        assert ev.returncode == 0, ev.stderr
        assert json.loads(ev.stdout)["cmi"] == entry["cmi"]
    assert entries["weight_norm"]["predictions"]["model_0"] == pytest.approx(9.1454, abs=5e-5)


def test_evaluate_agrees_with_loop_on_arbitrary_predictions(toy_task_path, tmp_path):
    task = load_task(toy_task_path)
    models = models_from_task(task)
    rng = np.random.default_rng(11)
    for trial in range(3):
        pred = {k: float(rng.integers(0, 4)) for k in models}  # heavy ties
        path = tmp_path / f"p{trial}.predict"
        path.write_text(json.dumps(pred))
        ev = run_cli("evaluate", toy_task_path, path, "--json")
        assert ev.returncode == 0, ev.stderr
        assert abs(json.loads(ev.stdout)["cmi"] - reference_cmi(pred, models)[0]) <= 1e-9


def test_score_table_and_measures_listing(toy_task_path, tmp_path):
    out = run_cli("score", toy_task_path, "-m", "weight_norm", "-q", "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.strip().splitlines()[:2]
    assert header.split()[:5] == ["task", "measure", "K", "CMI", "x100"]
    assert row.split()[:4] == ["pgdl_toy_data", "weight_norm", "1", "10.07"]  # deterministic: one repeat
    listing = run_cli("measures")
    assert listing.returncode == 0
    names = [line.split()[0] for line in listing.stdout.splitlines() if line and not line.startswith(" ")]
    assert {"weight_norm", "distance_from_init"} <= set(names)
