"""Long runs survive bad inputs and crashes: nothing finished is lost, nothing finished is recomputed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import faulty_measures  # noqa: F401  (registers the test_* measures)
from benchmark.running.executor import LocalExecutor, SerialExecutor
from benchmark.running.runner import prepare, run_measures, stored_values
from benchmark.running.store import ResultStore
from task_loaders import TaskFormatError, load_task
from task_loaders.keras_layers import layer_plan

REPO = Path(__file__).resolve().parents[1]
N_MODELS = 18


@pytest.fixture
def env(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PGDL_TEST_CALL_LOG", str(log))
    monkeypatch.setenv("PGDL_TEST_MARKER_DIR", str(tmp_path))
    monkeypatch.setenv("PGDL_TEST_BAD_MODEL", "5")
    return {"log": log, "store": ResultStore(tmp_path / "store.sqlite"), "tmp": tmp_path}


def calls(log: Path) -> Counter:
    return Counter(tuple(line.split()) for line in log.read_text().splitlines()) if log.exists() else Counter()


def run(task, names, store, executor=None, **kwargs):
    runs = [prepare(task, names)]
    report = run_measures(runs, store, executor or LocalExecutor(workers=2, budget=60), progress=False, **kwargs)
    return runs[0], report


def test_measure_that_raises_on_one_model(toy_task_path, env):
    task = load_task(toy_task_path)
    names = ["test_fine", "test_raises"]
    first_run, report = run(task, names, env["store"])
    assert [(f.model_id, f.measure, f.status) for f in report.failures] == [("5", "test_raises", "error")]
    assert "ValueError: deliberate failure" in report.failures[0].error
    assert report.computed == 2 * N_MODELS
    fine = stored_values(env["store"], first_run, "test_fine")
    assert fine == {f"model_{m}": float(m) + 200 for m in task.model_ids}  # 200 training samples
    assert stored_values(env["store"], first_run, "test_raises") is None  # incomplete: not scored
    assert all(n == 1 for n in calls(env["log"]).values()) and len(calls(env["log"])) == 2 * N_MODELS

    # a rerun recomputes nothing, failure included (it would fail again); --retry-failed retries it only
    _, again = run(task, names, env["store"])
    assert again.computed == 0 and again.reused == 2 * N_MODELS and len(again.failures) == 1
    _, retried = run(task, names, env["store"], retry_failed=True)
    assert retried.computed == 1
    assert calls(env["log"])[("test_raises", "5")] == 2
    assert sum(calls(env["log"]).values()) == 2 * N_MODELS + 1


def test_measure_that_hangs_times_out_and_the_rest_completes(toy_task_path, env):
    task = load_task(toy_task_path)
    start = time.monotonic()
    first_run, report = run(task, ["test_hangs", "test_fine"], env["store"], LocalExecutor(workers=2, budget=3))
    elapsed = time.monotonic() - start
    assert [(f.model_id, f.measure, f.status) for f in report.failures] == [("5", "test_hangs", "timeout")]
    assert "exceeded the time budget of 3 s" in report.failures[0].error
    # the measure after the hung one, on the same model, still ran (on a fresh worker)
    assert stored_values(env["store"], first_run, "test_fine") is not None
    assert elapsed < 40
    row = env["store"].rows(first_run.fingerprint, "test_hangs", *first_run.measures["test_hangs"])["5"]
    assert row.status == "timeout" and row.seconds == 3


def test_nan_is_a_recorded_failure(toy_task_path, env):
    task = load_task(toy_task_path)
    _, report = run(task, ["test_nan"], env["store"], SerialExecutor())
    assert [(f.model_id, f.status) for f in report.failures] == [("5", "error")]
    assert "returned nan, not a finite number" in report.failures[0].error


def test_worker_killed_mid_run_is_retried_and_nothing_is_recomputed(toy_task_path, env):
    task = load_task(toy_task_path)
    first_run, report = run(task, ["test_kills_worker", "test_fine"], env["store"])
    assert report.failures == []
    values = stored_values(env["store"], first_run, "test_kills_worker")
    assert values == {f"model_{m}": 4.0 + float(m) for m in task.model_ids}
    counts = calls(env["log"])
    assert counts[("test_kills_worker", "5")] == 2  # killed once, retried once
    assert all(n == 1 for key, n in counts.items() if key != ("test_kills_worker", "5"))
    assert (env["tmp"] / "killed_once").exists()


def test_worker_that_keeps_dying_is_reported(toy_task_path, env, monkeypatch):
    monkeypatch.setenv("PGDL_TEST_ALWAYS_KILL", "1")
    task = load_task(toy_task_path)
    _, report = run(task, ["test_kills_worker"], env["store"], LocalExecutor(workers=2, budget=60, max_attempts=2))
    assert [(f.model_id, f.status) for f in report.failures] == [("5", "error")]
    assert "worker process died (signal 9) 2 times while running test_kills_worker" in report.failures[0].error
    assert calls(env["log"])[("test_kills_worker", "5")] == 2
    assert sum(calls(env["log"]).values()) == N_MODELS + 1


def _damaged_copy(toy_task_path, copy_tree, tmp, damage):
    task_dir = copy_tree(toy_task_path, tmp / "toy")
    damage(task_dir)
    return task_dir


def _edit_config(task_dir, model_id, change):
    path = task_dir / f"model_{model_id}" / "config.json"
    config = json.loads(path.read_text())
    change(config["model_config"])
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    "case,damage,expected",
    [
        ("truncated_weights",
         lambda d: (d / "model_5" / "weights.hdf5").write_bytes((d / "model_5" / "weights.hdf5").read_bytes()[:3000]),
         "model_5/weights.hdf5: unreadable or truncated"),
        ("unknown_layer", lambda d: _edit_config(d, "5", lambda layers: layers[0].update(layer_name="LSTM")),
         "model_5/config.json: layer 0: unknown layer class 'LSTM'"),
        ("oversized_layer", lambda d: _edit_config(d, "5", lambda layers: layers[0].update(units=10**9)),
         "parameters is over the limit"),
    ],
)
def test_bad_model_fails_alone_and_good_models_are_kept(toy_task_path, copy_tree, env, case, damage, expected):
    task = load_task(_damaged_copy(toy_task_path, copy_tree, env["tmp"], damage))
    first_run, report = run(task, ["test_fine"], env["store"])
    assert [(f.model_id, f.status) for f in report.failures] == [("5", "bad_input")]
    assert expected in report.failures[0].error
    rows = env["store"].rows(first_run.fingerprint, "test_fine", *first_run.measures["test_fine"])
    assert sorted(m for m, r in rows.items() if r.status == "ok") == sorted(m for m in task.model_ids if m != "5")
    _, again = run(task, ["test_fine"], env["store"])
    assert again.computed == 0
    assert all(n == 1 for n in calls(env["log"]).values())


def test_corrupt_shard_fails_every_model_with_one_message(toy_task_path, copy_tree, env):
    def corrupt(d):
        shard = d / "dataset_1" / "train" / "shard_0.tfrecord"
        data = bytearray(shard.read_bytes())
        data[40] ^= 0xFF
        shard.write_bytes(bytes(data))

    task = load_task(_damaged_copy(toy_task_path, copy_tree, env["tmp"], corrupt))
    _, report = run(task, ["test_fine"], env["store"])
    assert len(report.failures) == N_MODELS
    assert {f.status for f in report.failures} == {"bad_input"}
    assert len({f.error for f in report.failures}) == 1
    assert "train/shard_0.tfrecord: payload checksum mismatch in record 0" in report.failures[0].error


def test_oversized_layer_is_refused_before_allocation():
    start = time.perf_counter()
    with pytest.raises(TaskFormatError, match=r"layer 1 \(Dense\): 1,000,001,000,000,000 parameters is over the limit"):
        layer_plan([{"layer_name": "Flatten"}, {"layer_name": "Dense", "units": 10**9}], [1000, 1000, 1])
    with pytest.raises(TaskFormatError, match="larger than"):
        layer_plan([{"layer_name": "Conv2D", "filters": 100000, "kernel_size": 1}], [1000, 1000, 1])
    assert time.perf_counter() - start < 1.0


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, **kwargs)


def test_incomplete_grid_is_refused_and_other_tasks_still_run(toy_task_path, copy_tree, env):
    def drop(d):
        configs = json.loads((d / "model_configs.json").read_text())
        del configs["7"]
        (d / "model_configs.json").write_text(json.dumps(configs))

    bad = _damaged_copy(toy_task_path, copy_tree, env["tmp"] / "bad", drop)
    out = _cli("score", bad, toy_task_path, "-m", "weight_norm", "-q", "--store", env["tmp"] / "s.sqlite",
               "--out", env["tmp"] / "pred", "--workers", "1")
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("pgdl-bench: error:")]
    assert len(errors) == 1 and "incomplete hyperparameter grid" in errors[0] and "no model has" in errors[0]
    assert "pgdl_toy_data  weight_norm" in out.stdout  # the good task was scored anyway


def test_whole_run_killed_with_sigkill_resumes_without_recomputing(toy_task_path, env):
    store_path = env["tmp"] / "killed.sqlite"
    args = ["score", toy_task_path, "-m", "test_slow", "--plugin", "faulty_measures", "-q", "--store", store_path,
            "--out", env["tmp"] / "pred", "--workers", "1"]
    cli_env = dict(os.environ, PGDL_TEST_SLOW_S="0.4", PYTHONPATH=str(REPO / "tests"))
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *map(str, args)], cwd=REPO, env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    stored = []
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if store_path.exists():
            try:
                with sqlite3.connect(store_path) as db:
                    stored = [r[0] for r in db.execute("SELECT model_id FROM results WHERE status='ok'")]
            except sqlite3.OperationalError:
                continue
            if len(stored) >= 5:
                break
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run: parent and its workers
    proc.wait()
    assert 5 <= len(stored) < N_MODELS, stored
    with sqlite3.connect(store_path) as db:
        before = {r[0] for r in db.execute("SELECT model_id FROM results WHERE status='ok'")}
    before_calls = calls(env["log"])

    out = _cli("score", *args[1:], env=cli_env)
    assert out.returncode == 0, out.stderr
    after_calls = calls(env["log"]) - before_calls
    recomputed = {model for (_, model) in after_calls} & before
    assert recomputed == set(), f"finished results recomputed: {sorted(recomputed)}"
    assert {model for (_, model) in after_calls} | before == {str(i) for i in range(N_MODELS)}
    predict = json.loads((env["tmp"] / "pred" / "test_slow" / "pgdl_toy_data.predict").read_text())
    assert predict == {f"model_{i}": float(i) for i in range(N_MODELS)}
