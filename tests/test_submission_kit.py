"""--submission reproduces the starting kit's ingestion: recording layers, legacy numpy aliases, TensorFlow checked first."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import benchmark.running.submission as submission
from benchmark.cli import main
from task_loaders import load_task

needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                              reason="TensorFlow is not installed (pip install -e '.[tf]')")

# what the third-place submission relies on: the kit's layers record their input; numpy-1.18 aliases
KIT_USER = '''
import numpy as np

def complexity(model, dataset):
    print("submissions print: this must not reach --json")
    x = np.stack([x for x, _ in dataset.take(16).as_numpy_iterator()]).astype(np.float)
    model(x)
    h = model.layers[-1]._last_seen_input.numpy()
    return float(np.mean(np.square(h))) + np.int(0) + len(np.zeros(0, dtype=np.object))
'''


def test_legacy_numpy_aliases_are_the_builtins(monkeypatch):
    for alias in ("int", "float", "object", "long", "unicode"):
        monkeypatch.delitem(np.__dict__, alias, raising=False)
    submission.legacy_numpy_aliases()
    assert (np.int, np.float, np.object, np.long, np.unicode) == (int, float, object, int, str)
    assert np.zeros(2, dtype=np.float).dtype == np.float64


def test_missing_tensorflow_stops_before_any_model(monkeypatch, capsys, tmp_path, toy_task_path):
    folder = tmp_path / "kit_user"
    folder.mkdir()
    (folder / "complexity.py").write_text(KIT_USER)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name, *a))
    monkeypatch.setenv("PGDL_BENCH_HOME", str(tmp_path / "home"))
    code = main(["score", str(toy_task_path), "--submission", str(folder), "-q", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "kit_user" in err[0] and "TensorFlow is needed" in err[0]
    assert not (tmp_path / "p").exists()  # no model was tried, nothing written


@needs_tf
@pytest.mark.slow  # a TensorFlow worker: about a minute on the shared 2-core machine
def test_kit_model_records_inputs_and_runs_a_numpy_118_submission(tmp_path, toy_task_path):
    folder = tmp_path / "kit_user"
    folder.mkdir()
    (folder / "complexity.py").write_text(KIT_USER)
    env = dict(os.environ, PGDL_BENCH_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-m", "benchmark", "score", str(toy_task_path), "--submission", str(folder),
                          "-m", "submission:kit_user", "--json", "-q", "--out", str(tmp_path / "p")],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    values = json.loads(out.stdout)["tasks"]["pgdl_toy_data"]["submission:kit_user"]["predictions"]
    task = load_task(toy_task_path)
    x, _ = task.train_split()
    for model_id in ("0", "9"):
        net = task.load_model(model_id).network
        with torch.no_grad():
            h = x[:16]
            for module in list(net.children())[:-1]:  # the input of the last layer
                h = module(h)
        assert values[f"model_{model_id}"] == pytest.approx(float(h.double().square().mean()), rel=1e-5)
