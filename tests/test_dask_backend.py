"""The Dask backend on a LocalCluster (loopback only) gives the same results as the local pool."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import faulty_measures  # noqa: F401
from benchmark.running.executor import DaskExecutor, LocalExecutor
from benchmark.running.runner import prepare, run_measures, stored_values
from benchmark.running.store import ResultStore
from task_loaders import load_task

distributed = pytest.importorskip("distributed", reason="the Dask backend needs the 'dask' extra")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        yield cluster


def test_dask_matches_local(toy_task_path, tmp_path, cluster):
    # test_hangs never returns on model 5 (the default $PGDL_TEST_BAD_MODEL, as the cluster saw it)
    task = load_task(toy_task_path)
    names = ["weight_norm", "distance_from_init", "test_fine", "test_hangs"]
    results = {}
    for backend, executor in (("local", LocalExecutor(workers=2, budget=4)),
                              ("dask", DaskExecutor(cluster.scheduler_address, budget=4))):
        store = ResultStore(tmp_path / f"{backend}.sqlite")
        run = prepare(task, names)
        report = run_measures([run], store, executor, progress=False)
        results[backend] = ({n: stored_values(store, run, n) for n in names},
                            [(f.model_id, f.measure, f.status) for f in report.failures])
    assert results["dask"] == results["local"]
    values, failures = results["dask"]
    assert failures == [("5", "test_hangs", "timeout")]  # the budget holds on the cluster too
    assert values["test_fine"] == {f"model_{m}": float(m) + 200 for m in task.model_ids}
    assert values["weight_norm"]["model_0"] == pytest.approx(9.1454, abs=1e-4)


def test_cli_dask_backend(toy_task_path, tmp_path, cluster):
    def score(*extra):
        out = subprocess.run([sys.executable, "-m", "benchmark", "score", str(toy_task_path), "-m", "weight_norm",
                              "--json", "-q", "--out", str(tmp_path / "p"), *extra],
                             capture_output=True, text=True, cwd=REPO)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["tasks"]["pgdl_toy_data"]["weight_norm"]

    via_dask = score("--backend", "dask", "--scheduler", cluster.scheduler_address, "--store", str(tmp_path / "d.db"))
    local = score("--store", str(tmp_path / "l.db"))
    assert via_dask["predictions"] == local["predictions"] and via_dask["cmi"] == local["cmi"]


MAIN_MEASURE = '''
from measures import measure

SCALE = 2.0


@measure("main_module_abs_sum", stochastic=False)
def main_module_abs_sum(view):
    """Twice sum |w|, defined in a script's __main__."""
    return SCALE * float(sum(float(p.detach().abs().sum()) for p in view.network.parameters()))
'''


def test_a_measure_defined_in_main_scores_on_every_executor(toy_task_path, tmp_path, cluster):
    import benchmark
    from measures.registry import _REGISTRY

    namespace = {"__name__": "__main__"}
    exec(compile(MAIN_MEASURE, "<notebook cell>", "exec"), namespace)  # as a notebook or a script defines it
    try:
        task = load_task(toy_task_path)
        net = task.load_model(task.model_ids[0]).network
        expected = 2.0 * float(sum(float(p.detach().abs().sum()) for p in net.parameters()))
        for backend, extra in (("local", {"workers": 2}), ("dask", {"scheduler": cluster.scheduler_address})):
            out = benchmark.score(str(toy_task_path), "main_module_abs_sum", backend=backend, progress=False,
                                  store=tmp_path / f"{backend}.sqlite", out=tmp_path / backend, **extra)
            assert out["failures"] == [] and out["computed"] == len(task.model_ids), backend
            scores = out["tasks"]["pgdl_toy_data"]["main_module_abs_sum"]
            assert scores["predictions"][f"model_{task.model_ids[0]}"] == pytest.approx(expected, rel=1e-6)
    finally:
        _REGISTRY.pop("main_module_abs_sum", None)
