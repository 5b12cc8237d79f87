"""Plugins: entry points, --plugin files and functions, the new-measure scaffold, PGDL submissions."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from task_loaders import load_task

REPO = Path(__file__).parents[1]
SUBMISSIONS = REPO / "tests" / "submissions"


def run_cli(*args, env_extra=None, cwd=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd)


def _fake_distribution(site: Path, dist: str, module: str, source: str, entry_points: str) -> None:
    """An installed package as pip leaves it: a module and a .dist-info with entry_points.txt."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[pgdl_bench.measures]\n{entry_points}\n")


PLAIN_MEASURE = '''
import numpy as np

def kernel_count(view):
    """Number of kernel entries (plain function, no decorator)."""
    return float(sum(t.numel() for n, t in view.network.named_parameters() if n.endswith("weight") and t.dim() > 1))
kernel_count.sign = -1
'''


def _toy_kernel_count(toy_task_path, model_id="0"):
    net = load_task(toy_task_path).load_model(model_id).network
    return float(sum(t.numel() for n, t in net.named_parameters() if n.endswith("weight") and t.dim() > 1))


def test_entry_point_plain_function_is_discovered_and_scores(toy_task_path, tmp_path):
    site = tmp_path / "site"
    _fake_distribution(site, "kc-measure", "kc_measure", PLAIN_MEASURE, "kernel_count = kc_measure:kernel_count")
    env = {"PYTHONPATH": str(site)}
    listing = run_cli("measures", "--json", env_extra=env)
    assert listing.returncode == 0, listing.stderr
    entry = json.loads(listing.stdout)["kernel_count"]
    assert entry["sign"] == -1 and entry["description"].startswith("Number of kernel entries")
    assert "kc-measure 0.3" in entry["source"]
    out = run_cli("score", toy_task_path, "-m", "kernel_count", "--json", "-q", "--out", tmp_path / "p", env_extra=env)
    assert out.returncode == 0, out.stderr
    predictions = json.loads(out.stdout)["tasks"]["pgdl_toy_data"]["kernel_count"]["predictions"]
    assert predictions["model_0"] == _toy_kernel_count(toy_task_path)


def test_entry_point_name_clash_names_both_sources(tmp_path):
    site = tmp_path / "site"
    source = "from measures import measure\n\n@measure('weight_norm', source='x')\ndef my_norm(view):\n    return 1.0\n"
    _fake_distribution(site, "clash-pkg", "clash_mod", source, "weight_norm = clash_mod:my_norm")
    out = run_cli("measures", env_extra={"PYTHONPATH": str(site)})
    assert out.returncode == 2
    message = out.stderr.strip()
    assert message.count("\n") == 0
    assert "measures.families.norms:weight_norm" in message and "clash_mod:my_norm" in message
    assert "clash-pkg 0.3" in message


def test_broken_entry_point_is_one_clear_error(tmp_path):
    site = tmp_path / "site"
    _fake_distribution(site, "broken-pkg", "broken_mod", "raise RuntimeError('boom at import')\n",
                       "broken = broken_mod:fn")
    out = run_cli("measures", env_extra={"PYTHONPATH": str(site)})
    assert out.returncode == 2
    assert "broken-pkg 0.3" in out.stderr and "boom at import" in out.stderr
    # and the switch that turns discovery off
    out = run_cli("measures", env_extra={"PYTHONPATH": str(site), "PGDL_BENCH_NO_PLUGINS": "1"})
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("form", ["file", "file:function", "module:function"])
def test_plugin_specs(toy_task_path, tmp_path, form):
    (tmp_path / "my_plugin.py").write_text(PLAIN_MEASURE)
    spec = {"file": tmp_path / "my_plugin.py", "file:function": f"{tmp_path / 'my_plugin.py'}:kernel_count",
            "module:function": "my_plugin:kernel_count"}[form]
    env = {"PYTHONPATH": str(tmp_path)}
    if form == "file":
        # a plain file registers what its @measure functions declare
        (tmp_path / "my_plugin.py").write_text(
            "from measures import measure\n" + PLAIN_MEASURE.replace("def kernel_count", "@measure('kernel_count', "
                                                                     "source='test', sign=-1)\ndef kernel_count"))
    # without -m, only the plugin's measures are scored
    out = run_cli("score", toy_task_path, "--plugin", spec, "--json", "-q", "--out", tmp_path / "p", env_extra=env)
    assert out.returncode == 0, out.stderr
    entries = json.loads(out.stdout)["tasks"]["pgdl_toy_data"]
    assert list(entries) == ["kernel_count"]
    assert entries["kernel_count"]["predictions"]["model_3"] == _toy_kernel_count(toy_task_path, "3")


def test_plugin_errors(toy_task_path, tmp_path):
    out = run_cli("score", toy_task_path, "--plugin", tmp_path / "missing.py")
    assert out.returncode == 2 and "missing.py: plugin file not found" in out.stderr
    (tmp_path / "p.py").write_text("x = 1\n")
    out = run_cli("score", toy_task_path, "--plugin", f"{tmp_path / 'p.py'}:nothing")
    assert out.returncode == 2 and "has no attribute 'nothing'" in out.stderr


def test_new_measure_scaffold_installs_and_is_discovered(toy_task_path, tmp_path):
    out = run_cli("new-measure", "l1_weights", "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    root = tmp_path / "pgdl-measure-l1-weights"
    assert (root / "pyproject.toml").is_file() and (root / "tests" / "test_l1_weights.py").is_file()
    assert run_cli("new-measure", "l1_weights", "--out", tmp_path).returncode == 2  # refuses to overwrite
    assert run_cli("new-measure", "Bad-Name", "--out", tmp_path).returncode == 2
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(root)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    env = {"PYTHONPATH": str(site)}
    listing = run_cli("measures", env_extra=env)
    assert listing.returncode == 0, listing.stderr
    assert "l1_weights" in listing.stdout
    listed = run_cli("measures", "--json", env_extra=env)
    entry = json.loads(listed.stdout)["l1_weights"]
    assert entry["sign"] == 1 and entry["stochastic"] is False  # the template declares both
    # its own test passes against the installed package
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
                         capture_output=True, text=True, cwd=root, env={**os.environ, **env})
    assert own.returncode == 0, own.stdout + own.stderr
    # and it scores; the value is the L1 norm of the trainable parameters, from the weight files
    out = run_cli("score", toy_task_path, "-m", "l1_weights", "--json", "-q", "--out", tmp_path / "p", env_extra=env)
    assert out.returncode == 0, out.stderr
    value = json.loads(out.stdout)["tasks"]["pgdl_toy_data"]["l1_weights"]["predictions"]["model_5"]
    net = load_task(toy_task_path).load_model("5").network
    expected = sum(float(np.abs(p.detach().double().numpy()).sum()) for p in net.parameters())
    assert value == pytest.approx(expected, rel=1e-12)


# -- PGDL submissions under TensorFlow ---------------------------------------------------------

_NO_TF = importlib.util.find_spec("tensorflow") is None
if _NO_TF and os.environ.get("PGDL_REQUIRE_TF"):
    raise RuntimeError("PGDL_REQUIRE_TF is set but TensorFlow is not installed (pip install -e '.[tf]')")
needs_tf = pytest.mark.skipif(_NO_TF, reason="TensorFlow is not installed (pip install -e '.[tf]'): submissions need it")


def _toy_jacobian(toy_task_path, model_id: str, n: int = 256) -> float:
    task = load_task(toy_task_path)
    net = task.load_model(model_id).network
    x, _ = task.train_split()
    x = x[:n].clone().requires_grad_(True)
    logits = net(x)
    total = 0.0
    for k in range(logits.shape[1]):
        (g,) = torch.autograd.grad(logits[:, k].sum(), x, retain_graph=True)
        total += float(g.double().square().sum())
    return total / len(x)


@needs_tf
def test_submissions_run_unchanged_and_match_native(toy_task_path, tmp_path):
    args = ["score", toy_task_path, "--json", "-q", "--out", tmp_path / "p", "-m", "weight_norm",
            "-m", "distance_from_init"]
    for name in ("weight_norm", "distance_from_init", "jacobian", "shuffled_loss"):
        args += ["--submission", SUBMISSIONS / name, "-m", f"submission:{name}"]
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    entries = json.loads(out.stdout)["tasks"]["pgdl_toy_data"]
    for name in ("weight_norm", "distance_from_init"):
        native, theirs = entries[name]["predictions"], entries[f"submission:{name}"]["predictions"]
        for model in native:
            assert theirs[model] == pytest.approx(native[model], rel=1e-5, abs=1e-5)
    jac = entries["submission:jacobian"]["predictions"]
    for model_id in ("0", "7", "17"):  # GradientTape in TF vs autograd in torch on the same 256 samples
        assert jac[f"model_{model_id}"] == pytest.approx(_toy_jacobian(toy_task_path, model_id), rel=1e-4)
    losses = entries["submission:shuffled_loss"]["predictions"]
    assert all(np.isfinite(v) and v > 0 for v in losses.values())
    # rerun: everything comes from the store; the submission's code hash is its version
    again = run_cli(*args)
    assert json.loads(again.stdout)["computed"] == 0


@needs_tf
def test_bad_submissions_fail_clearly(toy_task_path, tmp_path):
    out = run_cli("score", toy_task_path, "--submission", tmp_path)
    assert out.returncode == 2 and "no complexity.py" in out.stderr
    bad = tmp_path / "raises"
    bad.mkdir()
    (bad / "complexity.py").write_text("def complexity(model, dataset):\n    raise ValueError('nope')\n")
    out = run_cli("score", toy_task_path, "--submission", bad, "-q", "--out", tmp_path / "p")
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.startswith("pgdl-bench: error")]
    assert len(lines) == 1 and "nope" in lines[0] and "submission:raises failed" in lines[0]
