"""Issue 13, points 1, 3, 5 and 6: faults of worker processes and of concurrent runs lose nothing healthy.

Each test reproduces the fault as the issue found it on the old main, where it fails.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psutil
import pytest

import faulty_processes  # noqa: F401  (registers test_exits, test_prints, test_sleeps)
from benchmark.running.executor import LocalExecutor, SerialExecutor
from benchmark.running.runner import prepare, run_measures, stored_values
from benchmark.running.store import ResultStore
from task_loaders import load_task

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def call_log(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PGDL_TEST_CALL_LOG", str(log))
    monkeypatch.setenv("PGDL_TEST_BAD_MODEL", "5")
    return log


def _calls(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def test_1_a_measure_that_kills_its_worker_fails_alone(toy_task_path, tmp_path, call_log):
    # test_exits calls os._exit(1) on model 5; weight_norm runs after it in the same job
    task = load_task(toy_task_path)
    store = ResultStore(tmp_path / "s.sqlite")
    run = prepare(task, ["test_exits", "weight_norm"])
    report = run_measures([run], store, LocalExecutor(workers=2, budget=60), progress=False)
    assert [(f.model_id, f.measure, f.status) for f in report.failures] == [("5", "test_exits", "error")]
    assert "worker process died (exit status 1) 2 times while running test_exits" in report.failures[0].error
    norms = stored_values(store, run, "weight_norm")
    # every model's weight_norm, model 5's included, as a run without the crashing measure stores it
    alone = prepare(task, ["weight_norm"])
    run_measures([alone], ResultStore(tmp_path / "alone.sqlite"), SerialExecutor(), progress=False)
    assert norms == stored_values(ResultStore(tmp_path / "alone.sqlite"), alone, "weight_norm")
    exits = [model for name, model, _ in _calls(call_log) if name == "test_exits"]
    assert sorted(exits) == sorted(task.model_ids + ["5"])  # model 5 tried twice, every other model once
    # a rerun replays the one failure and nothing else
    again = run_measures([run], store, LocalExecutor(workers=2, budget=60), progress=False)
    assert again.computed == 0 and [(f.model_id, f.measure) for f in again.failures] == [("5", "test_exits")]


class _ConcurrentFresh:
    """Runs the jobs, then acts as a second run with --fresh starting on the same store: its first step
    deletes every result of ``measure`` (it does so ``times`` times, once after each of our rounds)."""

    def __init__(self, store_path: Path, run, measure: str, times: int):
        self.inner, self.store_path, self.run_, self.measure, self.times = SerialExecutor(), store_path, run, measure, times

    def run(self, jobs, on_result):
        self.inner.run(jobs, on_result)
        if self.times > 0:
            self.times -= 1
            with ResultStore(self.store_path) as other:  # another connection, as another process has
                other.delete(self.run_.fingerprint, [self.measure])


@pytest.mark.parametrize("deletions", [1, 5])
def test_3_results_deleted_by_a_concurrent_fresh_run_are_recomputed_or_reported(toy_task_path, tmp_path, call_log,
                                                                                capsys, monkeypatch, deletions):
    task = load_task(toy_task_path)
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    run = prepare(task, ["weight_norm", "test_sleeps"])
    monkeypatch.setenv("PGDL_TEST_SLEEP_S", "0")
    report = run_measures([run], store, _ConcurrentFresh(path, run, "test_sleeps", deletions), progress=False)
    assert stored_values(store, run, "weight_norm") is not None
    if deletions == 1:  # recomputed once, then complete: every requested measure is reported
        assert report.failures == []
        assert stored_values(store, run, "test_sleeps") == {f"model_{m}": float(m) for m in task.model_ids}
        assert report.computed == 3 * len(task.model_ids)
        assert "18 result(s) went missing from the store while this run computed" in capsys.readouterr().err
    else:  # deleted after every round: the run gives up, naming each lost result
        assert sorted((f.model_id, f.measure, f.status) for f in report.failures) == sorted(
            (m, "test_sleeps", "lost") for m in task.model_ids)
        assert "deleted from the store by another run" in report.failures[0].error
        assert stored_values(store, run, "test_sleeps") is None


def _cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, **kwargs)


def _cli_env(**extra):
    path = os.pathsep.join([str(TESTS), str(REPO)])
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)


@pytest.mark.parametrize("backend", ["serial", "local"])
def test_5_json_stdout_carries_only_the_json(toy_task_path, tmp_path, backend):
    out = _cli("score", toy_task_path, "-m", "test_prints", "--plugin", "faulty_processes", "--json", "-q",
               "--backend", backend, "--workers", "1", "--store", tmp_path / "s.sqlite", "--out", tmp_path / "p",
               env=_cli_env(PGDL_TEST_PRINT_ON_IMPORT="1"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # nothing but the JSON
    predictions = result["tasks"]["pgdl_toy_data"]["test_prints"]["predictions"]
    assert predictions == {f"model_{i}": float(i) for i in range(18)}
    # what the plugin and the measure printed is not lost: it is on stderr
    assert "faulty_processes: loaded" in out.stderr
    assert "test_prints: python says model 7" in out.stderr and "test_prints: fd 1 says model 7" in out.stderr


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_6_killing_the_main_process_stops_its_workers(toy_task_path, tmp_path, call_log, how):
    # two workers: each stores weight_norm of its first model, then hangs in test_sleeps for an hour
    store_path, stderr_path = tmp_path / "s.sqlite", tmp_path / "stderr.txt"
    stderr_file = stderr_path.open("w")  # a file, not a pipe: orphaned workers would hold a pipe open
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark", "score", str(toy_task_path), "-m", "weight_norm", "-m", "test_sleeps",
         "--plugin", "faulty_processes", "-q", "--workers", "2", "--store", str(store_path), "--out", str(tmp_path)],
        cwd=REPO, env=_cli_env(PYTHONFAULTHANDLER="1"), stdout=subprocess.DEVNULL, stderr=stderr_file,
        start_new_session=True,  # its own process group, as a shell gives a command run from a terminal
        # and SIGINT at its default, as that shell gives its foreground job: pytest itself may have been started
        # in the background (`cmd &` in a script), where SIGINT is ignored and the ignoring is inherited
        preexec_fn=_sigint_default)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            workers = {int(pid) for name, _, pid in _calls(call_log) if name == "test_sleeps"}
        assert len(workers) == 2, stderr_path.read_text()
        if how == "SIGINT":
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground group
        else:
            os.kill(proc.pid, getattr(signal, how))
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # say where it hangs: faulthandler dumps every thread on SIGABRT
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=30)
            pytest.fail(f"score did not exit 30 s after {how}; its threads:\n{stderr_path.read_text()}")
        stderr = stderr_path.read_text()
        deadline = time.monotonic() + 10
        while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(pid) for pid in workers), f"workers outlived the main process ({how})"
        if how != "SIGKILL":
            assert proc.returncode == 130
            assert stderr.strip().splitlines() == ["pgdl-bench: interrupted"], stderr
        with sqlite3.connect(store_path) as db:
            rows = db.execute("SELECT measure, status FROM results").fetchall()
        assert ("weight_norm", "ok") in rows  # finished results kept
        assert all(measure == "weight_norm" and status == "ok" for measure, status in rows)  # no fake failures
    finally:
        stderr_file.close()
        if proc.poll() is None:
            proc.kill()
        for pid in workers:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_3_two_cli_runs_on_one_store(toy_task_path, tmp_path):
    # run A: weight_norm and test_sleeps (1 s a model); run B, with --fresh, starts while A runs and
    # deletes every test_sleeps result, A's included, then takes 30 s a model recomputing them
    store = tmp_path / "s.sqlite"

    def start(name, sleep_s, *extra):
        out = (tmp_path / f"{name}.out").open("w")
        err = (tmp_path / f"{name}.err").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmark", "score", str(toy_task_path), *extra, "-m", "test_sleeps",
             "--plugin", "faulty_processes", "--json", "-q", "--workers", "1", "--store", str(store),
             "--out", str(tmp_path / name)],
            cwd=REPO, env=_cli_env(PGDL_TEST_SLEEP_S=str(sleep_s)), stdout=out, stderr=err)
        return proc, out, err

    def sleeps_stored():
        try:
            with closing(sqlite3.connect(store, timeout=30)) as db:
                return db.execute("SELECT COUNT(*) FROM results WHERE measure='test_sleeps'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    a, *a_files = start("a", 1, "-m", "weight_norm")
    b = None
    try:
        deadline = time.monotonic() + 120
        while sleeps_stored() < 3 and time.monotonic() < deadline and a.poll() is None:
            time.sleep(0.1)
        b, *b_files = start("b", 30, "--fresh")
        seen = sleeps_stored()
        while sleeps_stored() >= seen and time.monotonic() < deadline:
            seen = max(seen, sleeps_stored())
            time.sleep(0.05)
        assert a.poll() is None, "run B deleted nothing while run A was running: the fault was not reproduced"
        a.wait(timeout=120)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    result = json.loads((tmp_path / "a.out").read_text())
    errors = (tmp_path / "a.err").read_text()
    if a.returncode == 0:  # A recomputed what B deleted: it reports every requested measure
        assert sorted(result["tasks"]["pgdl_toy_data"]) == ["test_sleeps", "weight_norm"], errors
        assert result["tasks"]["pgdl_toy_data"]["test_sleeps"]["predictions"] == {
            f"model_{i}": float(i) for i in range(18)}
    else:  # or it says what it lost
        assert "test_sleeps lost on pgdl_toy_data/model_" in errors
