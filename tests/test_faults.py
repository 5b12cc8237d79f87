"""Regression tests of issue 13: each fault an adversarial run found, reproduced, and what must happen.

Every test drives the code the way the fault was found (mostly ``python -m benchmark`` in a process of
its own, with the serial backend where the backend does not matter) and fails on the code before the fix.
Tests that need a read-only file run the command as user ``nobody`` when the suite runs as root (root
writes through any permission bits).
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import benchmark
from benchmark.cli import main
from benchmark.running.runner import MeasureFailure, finite_value
from benchmark.scores.scoring import TaskArrays, conditional_mutual_information
from benchmark.running.store import ResultStore
from task_loaders import TaskFormatError, load_task

CODE = Path(benchmark.__file__).resolve().parents[1]  # the checkout under test (also for subprocesses)
TESTS = Path(__file__).resolve().parent
N_MODELS = 18


def cli(*args, cwd, env: dict | None = None, user: str | None = None, timeout: float = 300,
        memory: int | None = None) -> subprocess.CompletedProcess:
    """``python -m benchmark ARGS`` importing the code under test; ``memory`` caps its address space."""
    full_env = dict(os.environ, PYTHONPATH=str(CODE), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                    PYTHONDONTWRITEBYTECODE="1")
    full_env.update(env or {})
    command = [sys.executable, "-m", "benchmark", *map(str, args)]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]

    def limit():
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout,
                          preexec_fn=limit)


@pytest.fixture
def run_main(capsys):
    """``main(ARGS)`` in this process (much faster than a subprocess): a CompletedProcess-like result."""

    def run(*args) -> subprocess.CompletedProcess:
        capsys.readouterr()
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's own exit, or a measure's sys.exit escaping
            status = exc.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out, err)

    return run


def one_line(result: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> str:
    """The single ``pgdl-bench: error:`` line of a refused command, holding every fragment."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("pgdl-bench: error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert result.returncode == code, (result.returncode, line)
    return line


def edit_configs(task: Path, change) -> None:
    path = task / "model_configs.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=1))


def plugin(tmp_path: Path, body: str, name: str = "plugin.py") -> Path:
    path = tmp_path / name
    path.write_text("import math, os, sys\nimport numpy as np\nimport torch\nfrom measures import measure\n\n" + body)
    return path


def score_args(task, tmp_path, *args) -> list:
    return ["score", task, "--json", "-q", "--backend", "serial", "--store", tmp_path / "store.sqlite",
            "--out", tmp_path / "predictions", *args]


def score_json(task, tmp_path, *args, run=None, **kwargs) -> tuple[dict | None, subprocess.CompletedProcess]:
    """``score --json`` with the serial backend: in this process through ``run``, else in a subprocess."""
    if run is not None:
        result = run(*score_args(task, tmp_path, *args))
    else:
        result = cli(*score_args(task, tmp_path, *args), cwd=tmp_path, **kwargs)
    try:
        return json.loads(result.stdout), result
    except json.JSONDecodeError:
        return None, result


@pytest.fixture(autouse=True)
def forget_plugin_measures():
    """Measures registered from this module's plugin files must not leak into later tests' registries."""
    from benchmark.running import plugins
    from measures import registry

    before, loaded = set(registry._REGISTRY), dict(plugins._LOADED)
    yield
    for name in set(registry._REGISTRY) - before:
        if registry._REGISTRY[name].fn.__module__.startswith("pgdl_bench_plugin_"):
            del registry._REGISTRY[name]
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)


@pytest.fixture
def shared_tmp():
    """A folder every user can enter (pytest's own tmp_path is private to its owner), removed after."""
    path = Path(tempfile.mkdtemp(prefix="pgdl_faults_"))
    path.chmod(0o755)
    yield path
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    shutil.rmtree(path)


def as_unprivileged(folder: Path) -> tuple[str | None, dict]:
    """(user to run as, environment) for a command that must meet file permissions as a normal user."""
    home = folder / "user_home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    env = {"HOME": str(home), "MPLCONFIGDIR": str(home)}
    if os.geteuid() != 0:
        return None, env
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot meet a read-only file")
    return "65534", env


# -- 2. stale results after a code change ---------------------------------------------------------

EDITABLE = '''
@measure("p_edit", source="test", stochastic=False)
def p_edit(view):
    """The model id plus an offset that the test edits."""
    return OFFSET + float(view.model_id)
'''


def _as_in_a_new_process(path: Path) -> None:
    """Forget the imported plugin module, as the next command (a new process) would not have it."""
    from benchmark.running import plugins

    plugins._LOADED.pop(str(path), None)
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) == str(path.resolve()):
            del sys.modules[name]


def test_editing_a_plugin_file_recomputes_its_results_and_says_so(toy_task_path, tmp_path, run_main):
    path = plugin(tmp_path, EDITABLE.replace("OFFSET", "1.0"))
    first, result = score_json(toy_task_path, tmp_path, "--plugin", path, run=run_main)
    assert result.returncode == 0, result.stderr
    assert first["tasks"]["pgdl_toy_data"]["p_edit"]["predictions"]["model_5"] == 6.0

    plugin(tmp_path, EDITABLE.replace("OFFSET", "100.0"))
    _as_in_a_new_process(path)
    second, result = score_json(toy_task_path, tmp_path, "--plugin", path, run=run_main)
    assert result.returncode == 0, result.stderr
    predictions = second["tasks"]["pgdl_toy_data"]["p_edit"]["predictions"]
    assert predictions == {f"model_{m}": 100.0 + m for m in range(N_MODELS)}
    assert (second["computed"], second["reused"]) == (N_MODELS, 0)
    notes = [line for line in result.stderr.splitlines() if "made by other code" in line]
    assert len(notes) == 1 and "p_edit" in notes[0], result.stderr

    _as_in_a_new_process(path)
    third, result = score_json(toy_task_path, tmp_path, "--plugin", path, run=run_main)
    assert (third["computed"], third["reused"]) == (0, N_MODELS)  # same code: all reused, no note
    assert "made by other code" not in result.stderr


def test_upgrading_an_installed_measure_package_recomputes(toy_task_path, tmp_path, run_main, monkeypatch):
    from measures import plugins, registry

    site = tmp_path / "site"
    site.mkdir()
    (site / "fake_pgdl_measure.py").write_text(
        "def fake_dist_measure(view):\n    return float(view.model_id)\n\n\nfake_dist_measure.stochastic = False\n")
    dist = site / "fake_pgdl_measure-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text(
        "[pgdl_bench.measures]\nfake_dist_measure = fake_pgdl_measure:fake_dist_measure\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        outcomes = []
        for version in ("1.0", "1.1"):  # pip install --upgrade, then the next command
            (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-pgdl-measure\nVersion: {version}\n")
            plugins.load_entry_points(force=True)
            outcomes.append(score_json(toy_task_path, tmp_path, "-m", "fake_dist_measure", run=run_main))
    finally:
        registry._REGISTRY.pop("fake_dist_measure", None)
        getattr(plugins, "_DISTRIBUTIONS", {}).pop("fake_dist_measure", None)
        sys.modules.pop("fake_pgdl_measure", None)
    (first, r1), (second, r2) = outcomes
    assert r1.returncode == 0 and first["computed"] == N_MODELS, r1.stderr
    assert (second["computed"], second["reused"]) == (N_MODELS, 0), r2.stderr
    assert "made by other code" in r2.stderr


def test_replayed_failure_says_how_to_retry(toy_task_path, tmp_path, run_main):
    import faulty_measures  # noqa: F401  (registers test_raises; the serial backend runs it here)

    _, first = score_json(toy_task_path, tmp_path, "-m", "test_raises", run=run_main)
    assert first.returncode == 1 and "--retry-failed" not in first.stderr, first.stderr
    _, second = score_json(toy_task_path, tmp_path, "-m", "test_raises", run=run_main)
    line = one_line(second, "deliberate failure", "model_5", "--retry-failed", code=1)
    assert "earlier run" in line


# -- 4. model ids parsed from job keys -------------------------------------------------------------


def test_nested_model_id_is_refused_at_load_time(toy_task_copy, tmp_path, run_main):
    shutil.copytree(toy_task_copy / "model_2", toy_task_copy / "model_1" / "model_2")
    shutil.rmtree(toy_task_copy / "model_2")
    edit_configs(toy_task_copy, lambda d: d.update({"1/model_2": d.pop("2")}))
    with pytest.raises(TaskFormatError, match="'1/model_2' is not a plain name"):
        load_task(toy_task_copy)
    _, result = score_json(toy_task_copy, tmp_path, "-m", "weight_norm", run=run_main)
    one_line(result, str(toy_task_copy / "model_configs.json"), "1/model_2")


# -- 7. store and output-folder errors -------------------------------------------------------------


def _filled_store(path: Path) -> None:
    with ResultStore(path) as store:
        for i in range(3000):
            store.put("fp", "task", str(i), "m", "{}", "1", "ok", float(i), "x" * 100, 0.1)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_store_gives_one_line(toy_task_path, tmp_path, damage, run_main):
    store = tmp_path / "results.sqlite"
    if damage == "garbage":
        store.write_bytes(np.random.default_rng(0).bytes(8192))
    else:
        _filled_store(store)
        store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])
    result = run_main("score", toy_task_path, "-m", "weight_norm", "-q", "--backend", "serial", "--store", store,
                      "--out", tmp_path / "out")
    one_line(result, str(store), "move it aside", "--store")


def test_read_only_store_file_gives_one_line(toy_task_path, shared_tmp):
    user, env = as_unprivileged(shared_tmp)
    store = shared_tmp / "results.sqlite"
    _filled_store(store)
    store.chmod(0o444)
    result = cli("score", toy_task_path, "-m", "weight_norm", "-q", "--backend", "serial", "--store", store,
                 "--out", shared_tmp / "user_home" / "out", cwd=shared_tmp, user=user, env=env)
    one_line(result, str(store), "writable")


def test_read_only_bench_home_gives_one_line(toy_task_path, shared_tmp):
    user, env = as_unprivileged(shared_tmp)
    home = shared_tmp / "bench_home"
    home.mkdir()
    home.chmod(0o555)
    env["PGDL_BENCH_HOME"] = str(home)
    result = cli("score", toy_task_path, "-m", "weight_norm", "-q", "--backend", "serial",
                 "--out", shared_tmp / "user_home" / "out", cwd=shared_tmp, user=user, env=env)
    one_line(result, str(home / "results.sqlite"), "PGDL_BENCH_HOME")


def test_read_only_out_folder_gives_one_line(toy_task_path, shared_tmp):
    user, env = as_unprivileged(shared_tmp)
    parent = shared_tmp / "read_only"
    parent.mkdir()
    parent.chmod(0o555)
    out = parent / "board"  # to be created in a folder that cannot take it
    result = cli("leaderboard", toy_task_path, "-m", "weight_norm", "-q", "--backend", "serial",
                 "--store", shared_tmp / "user_home" / "store.sqlite", "--out", out, cwd=shared_tmp, user=user,
                 env=env)
    one_line(result, str(out), "--out")


# -- 8. unbounded reads ----------------------------------------------------------------------------

MEMORY_CAP = 6 << 30  # a run that reads /dev/zero to the end dies here instead of taking the machine


def test_config_json_symlinked_to_dev_zero_is_refused(toy_task_copy, tmp_path):
    config = toy_task_copy / "model_5" / "config.json"
    config.unlink()
    config.symlink_to("/dev/zero")
    _, result = score_json(toy_task_copy, tmp_path, "-m", "weight_norm", memory=MEMORY_CAP, timeout=120)
    line = one_line(result, str(config), "not a regular file")
    assert "model_5" in line


def test_config_json_fifo_is_refused_without_blocking(toy_task_copy, tmp_path):
    config = toy_task_copy / "model_4" / "config.json"
    config.unlink()
    os.mkfifo(config)
    _, result = score_json(toy_task_copy, tmp_path, "-m", "weight_norm", timeout=120)
    one_line(result, str(config), "not a regular file")


def test_huge_json_file_is_refused_before_reading(toy_task_path, toy_task_copy, tmp_path, run_main):
    configs = toy_task_copy / "model_configs.json"
    with open(configs, "r+b") as f:
        f.truncate(100 << 20)  # sparse: 100 MB that take no disk
    one_line(run_main("evaluate", toy_task_copy, tmp_path / "none.predict"), str(configs), "more than the")
    path = tmp_path / "huge.predict"
    path.write_bytes(b" " * (65 << 20))
    one_line(run_main("evaluate", toy_task_path, path), str(path), "more than the")


@pytest.mark.parametrize("kind", ["devzero", "fifo"])
def test_predict_file_reads_are_bounded(toy_task_path, tmp_path, kind):
    path = tmp_path / "p.predict"
    if kind == "devzero":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)
    result = cli("evaluate", toy_task_path, path, cwd=tmp_path, timeout=60, memory=MEMORY_CAP)
    one_line(result, str(path))


# -- 9. coerced return values ----------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (3, 3.0), (2.5, 2.5), (np.float32(1.5), 1.5), (np.int64(7), 7.0), (torch.tensor(0.25), 0.25),
    (torch.tensor(4, dtype=torch.int32), 4.0), (np.array(1.75), 1.75),
])
def test_real_numbers_are_values(value, expected):
    assert finite_value(value, "m") == expected


@pytest.mark.parametrize("value, fragments", [
    ("3.5", ["a str"]), (True, ["a bool"]), (np.bool_(True), ["numpy.bool"]), (None, ["a NoneType"]),
    (torch.ones(1000), ["torch.Tensor", "(1000,)"]), (np.ones((2, 3)), ["numpy.ndarray", "(2, 3)"]),
    (torch.tensor(True), ["torch.Tensor", "torch.bool"]), (1 + 2j, ["a complex"]), ([1.0], ["a list"]),
])
def test_anything_else_is_a_failure_naming_its_type(value, fragments):
    with pytest.raises(MeasureFailure) as info:
        finite_value(value, "m")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "1., 1." not in message and "tensor(" not in message  # never the printout


def test_string_and_bool_results_are_recorded_failures(toy_task_path, tmp_path, run_main):
    path = plugin(tmp_path, '''
@measure("p_string", source="test")
def p_string(view):
    return "3.5"

@measure("p_bool", source="test")
def p_bool(view):
    return True

@measure("p_vector", source="test")
def p_vector(view):
    return torch.ones(100000)
''')
    data, result = score_json(toy_task_path, tmp_path, "--plugin", path, run=run_main)
    assert result.returncode == 1 and data["tasks"]["pgdl_toy_data"] == {}
    errors = {f["measure"]: f["error"] for f in data["failures"]}
    assert "returned a str, not a number" in errors["p_string"]
    assert "returned a bool, not a number" in errors["p_bool"]
    assert "shape (100000,)" in errors["p_vector"] and len(errors["p_vector"]) < 200


# -- 10. --budget ----------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", ["0", "-5", "nan", "inf", "soon"])
def test_budget_must_be_a_positive_finite_number(toy_task_path, tmp_path, budget, run_main):
    result = run_main("score", toy_task_path, "-m", "weight_norm", "-q", "--backend", "serial",
                      "--store", tmp_path / "s.sqlite", "--out", tmp_path / "out", f"--budget={budget}")
    one_line(result, "--budget", "positive finite")
    assert not (tmp_path / "s.sqlite").exists()


# -- 11. duplicate keys in .predict files ----------------------------------------------------------


@pytest.mark.parametrize("duplicate", ['"model_4": 1.0', '"4": 1.0'])
def test_duplicate_predict_keys_are_refused(toy_task_path, tmp_path, duplicate, run_main):
    entries = [f'"model_{m}": {m * 0.5}' for m in range(N_MODELS)] + [duplicate]
    path = tmp_path / "dup.predict"
    path.write_text("{" + ", ".join(entries) + "}")
    one_line(run_main("evaluate", toy_task_path, path), str(path), "4")


# -- 12. one line for the rest ---------------------------------------------------------------------


def test_system_exit_in_a_measure_is_a_recorded_failure_in_the_serial_backend(toy_task_path, tmp_path, run_main):
    path = plugin(tmp_path, '''
@measure("p_sysexit", source="test")
def p_sysexit(view):
    if view.model_id == "5":
        sys.exit(3)
    return float(view.model_id)
''')
    data, result = score_json(toy_task_path, tmp_path, "--plugin", path, "-m", "p_sysexit", "-m", "weight_norm",
                              run=run_main)
    assert data is not None, (result.returncode, result.stderr)
    one_line(result, "SystemExit", "p_sysexit", "model_5", code=1)
    assert "weight_norm" in data["tasks"]["pgdl_toy_data"]


@pytest.mark.parametrize("case", ["deep", "huge_int_hparam", "huge_exponent_acc", "long_digits"])
def test_pathological_json_gives_one_line(toy_task_copy, tmp_path, case, run_main):
    configs = toy_task_copy / "model_configs.json"
    if case == "deep":
        configs.write_text("[" * 200000 + "]" * 200000)
    elif case == "huge_int_hparam":
        edit_configs(toy_task_copy, lambda d: d["0"]["hparams"]["num_units"].update(current_value=10 ** 400))
    elif case == "huge_exponent_acc":
        edit_configs(toy_task_copy, lambda d: d["3"]["metrics"].update(train_acc=10 ** 400))
    else:
        configs.write_text('{"0": ' + "9" * 5000 + "}")
    one_line(run_main("evaluate", toy_task_copy, tmp_path / "none.predict"), str(configs))


def test_huge_number_in_predict_file_gives_one_line(toy_task_path, tmp_path, run_main):
    path = tmp_path / "big.predict"
    path.write_text("{" + ", ".join(f'"model_{m}": {"1" + "0" * 400 if m == 7 else m}' for m in range(N_MODELS))
                    + "}")
    one_line(run_main("evaluate", toy_task_path, path), str(path), "model_7")


def test_invalid_input_shape_names_the_file(toy_task_copy, tmp_path, run_main):
    config = toy_task_copy / "model_0" / "config.json"
    data = json.loads(config.read_text())
    data["input_shape"] = ["three"]
    config.write_text(json.dumps(data))
    task = load_task(toy_task_copy)
    with pytest.raises(TaskFormatError, match="model_0/config.json"):
        task.input_shape
    _, result = score_json(toy_task_copy, tmp_path, "-m", "weight_norm", run=run_main)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all("model_0/config.json" in line and "input_shape" in line for line in lines), lines


@pytest.mark.parametrize("value", [1.5, -0.1])
def test_accuracy_outside_the_unit_interval_is_refused(toy_task_copy, tmp_path, value, run_main):
    edit_configs(toy_task_copy, lambda d: d["6"]["metrics"].update(test_acc=value))
    result = run_main("evaluate", toy_task_copy, tmp_path / "none.predict")
    one_line(result, str(toy_task_copy / "model_configs.json"), "model 6", "test_acc", "[0, 1]")


def test_leaderboard_csv_cells_cannot_be_formulas(toy_task_path, tmp_path, run_main):
    path = plugin(tmp_path, '''
@measure("=1+2", source="@SUM(A1:A9)")
def formula(view):
    """-2+3 cmd"""
    return -float(view.model_id)
''')
    result = run_main("leaderboard", toy_task_path, "--plugin", path, "-q", "--backend", "serial",
                      "--store", tmp_path / "s.sqlite", "--out", tmp_path / "board")
    assert result.returncode == 0, result.stderr
    import csv

    rows = list(csv.DictReader((tmp_path / "board" / "leaderboard.csv").open()))
    (row,) = [r for r in rows if "1+2" in r["measure"]]
    assert row["measure"] == "'=1+2" and row["source"] == "'@SUM(A1:A9)"
    for r in rows:  # no text cell starts a formula; numbers keep their sign
        for key, cell in r.items():
            if cell and cell[0] in "=+-@" and key not in ("mean_cmi_x100", "mean_kendall_tau", "mean_psi"):
                float(cell)  # only a number may start with '-'


# -- 13. evaluate on a reference folder ------------------------------------------------------------


def test_evaluate_on_a_reference_folder_without_model_folders(toy_task_path, tmp_path, run_main):
    reference = tmp_path / "reference_data" / "pgdl_toy_data"
    reference.mkdir(parents=True)
    shutil.copyfile(toy_task_path / "model_configs.json", reference / "model_configs.json")
    values = {f"model_{m}": math.sin(3.0 * m) for m in range(N_MODELS)}
    path = tmp_path / "my.predict"
    path.write_text(json.dumps(values))
    result = run_main("evaluate", reference, path, "--json")
    assert result.returncode == 0, result.stderr
    expected = conditional_mutual_information(values, TaskArrays.from_task(load_task(toy_task_path)))
    assert json.loads(result.stdout)["cmi"] == pytest.approx(expected.cmi, abs=1e-12)


# -- 14. internal bugs are not disguised as bad input ----------------------------------------------


def test_internal_bug_prints_a_traceback_and_asks_for_a_report(toy_task_path, tmp_path, monkeypatch, capsys):
    import benchmark.cli

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(benchmark.cli, "evaluate", broken)
    path = tmp_path / "p.predict"
    path.write_text(json.dumps({f"model_{m}": float(m) for m in range(N_MODELS)}))
    status = main(["evaluate", str(toy_task_path), str(path)])
    err = capsys.readouterr().err
    assert status not in (0, 1, 2), status
    assert "Traceback" in err and "ValueError: an internal bug" in err
    assert "bug in pgdl-bench" in err and "report" in err
    assert "pgdl-bench: error:" not in err
