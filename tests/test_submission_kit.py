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
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the default: the benchmark sets it
    out = subprocess.run([sys.executable, "-m", "benchmark", "score", str(toy_task_path), "--submission", str(folder),
                          "-m", "submission:kit_user", "--json", "-q", "--out", str(tmp_path / "p")],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "cpu_feature_guard" not in out.stderr  # TensorFlow's C++ INFO lines are off (TF_CPP_MIN_LOG_LEVEL=2)
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


def test_program_dir_goes_by_keyword_only_to_a_parameter_of_that_name(tmp_path):
    """The kit's ingestion passes ``program_dir=`` when ``complexity`` names it (``getfullargspec(...).args``),
    else calls ``complexity(model, dataset)``: a third parameter of another name keeps its default."""
    def with_dir(model, dataset, program_dir):
        return program_dir

    def kv_style(model, dataset, shallow=False):  # Chuang et al.'s kV-GN-Margin
        return shallow

    def two(model, dataset):
        return (model, dataset)

    def keyword_only(model, dataset, *, program_dir=None):  # not in .args: the kit passes nothing
        return program_dir

    assert submission.call_complexity(with_dir, "m", "d", tmp_path) == str(tmp_path)
    assert submission.call_complexity(kv_style, "m", "d", tmp_path) is False
    assert submission.call_complexity(two, "m", "d", tmp_path) == ("m", "d")
    assert submission.call_complexity(keyword_only, "m", "d", tmp_path) is None


RECORDS_LOG_LEVEL = '''
import os
LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")  # what a TensorFlow imported here would read

def complexity(model, dataset):
    return LEVEL
'''


@pytest.mark.parametrize("user_level, seen", [(None, submission.TF_LOG_LEVEL), ("0", "0")])
def test_tensorflow_logging_is_set_before_the_submission_imports_it_unless_the_user_set_it(
        tmp_path, monkeypatch, user_level, seen):
    if user_level is None:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "set first, so that the test puts it back as it was")
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", user_level)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # restored after the test
    folder = tmp_path / f"records_level_{user_level}"
    folder.mkdir()
    (folder / "complexity.py").write_text(RECORDS_LOG_LEVEL)
    assert submission.load_complexity(folder)(None, None) == seen
    assert submission.TF_LOG_LEVEL == "2"  # errors only


@needs_tf
def test_registering_a_submission_sets_the_workers_environment(tmp_path, monkeypatch):
    from measures.registry import _REGISTRY

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "set first, so that the test puts it back as it was")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    folder = tmp_path / "quiet"
    folder.mkdir()
    (folder / "complexity.py").write_text(RECORDS_LOG_LEVEL)
    try:
        name = submission.register_submission(folder)
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2" and os.environ["KERAS_BACKEND"] == "tensorflow"
    finally:
        _REGISTRY.pop("submission:quiet", None)
    assert name == "submission:quiet"
