"""Writing a measure without friction: the README's examples, -m selections, --param, --version, pipes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import measures
from benchmark import cli
from benchmark.pipeline import parse_params
from benchmark.running.runner import model_view, prepare
from measures.registry import _REGISTRY
from task_loaders import load_task

REPO = Path(__file__).parents[1]


EXAMPLE = REPO / "docs" / "examples" / "plugin" / "my_measures.py"


def test_the_example_plugin_with_its_helper_scores_both_embedded_zoos(embedded_zoo, tmp_path, capsys):
    """docs/examples/plugin/my_measures.py, which the README shows and scores, imports row_norms.py beside it."""
    zoos = [embedded_zoo("digits-bn"), embedded_zoo("digits-nobn")]
    status = cli.main(["score", *map(str, zoos), "--plugin", str(EXAMPLE), "-q", "--json",
                       "--backend", "serial", "--store", str(tmp_path / "results.sqlite"),
                       "--out", str(tmp_path / "predictions")])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and not out["failures"]
    for task in ("digits-bn", "digits-nobn"):
        assert set(out["tasks"][task]) == {"logit_norm", "input_gradient_norm"}
        for scores in out["tasks"][task].values():
            assert len(scores["predictions"]) == 32 and np.isfinite(list(scores["predictions"].values())).all()
            assert 0 <= scores["cmi"] <= 1
    # the gradient example's value, from per-sample gradients computed one at a time
    task = load_task(zoos[0])
    view = model_view(task, task.model_ids[0])
    x, y = view.sample(200)
    norms = []
    for xi, yi in zip(x, y):
        xi = xi[None].clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(view.network(xi)[0, yi], xi)
        norms.append(float(g.norm()))
    value = out["tasks"]["digits-bn"]["input_gradient_norm"]["predictions"][f"model_{task.model_ids[0]}"]
    assert value == pytest.approx(np.mean(norms), rel=1e-5)


def test_a_name_is_all_a_measure_needs():
    try:
        @measures.measure("authoring_name_only")
        def name_only(view) -> float:
            """Always one."""
            return 1.0

        entry = measures.get("authoring_name_only")
        assert (entry.source, entry.sign, entry.description, measures.family(entry)) == ("", 1, "Always one.", "plugins")
    finally:
        _REGISTRY.pop("authoring_name_only", None)


def test_measures_listing_shows_no_source_and_families(capsys):
    try:
        measures.measure("authoring_unsourced")(lambda view: 0.0)
        assert cli.main(["measures"]) == 0
        out = capsys.readouterr().out
    finally:
        _REGISTRY.pop("authoring_unsourced", None)
    assert re.search(r"authoring_unsourced .*\n\s+family: plugins; source: no source", out)
    assert re.search(r"silhouette .*\n\s+family: clustering; source: Rousseeuw", out)


def test_select_all_families_and_did_you_mean():
    assert measures.select(["all"]) == measures.available()
    assert measures.select(["family:flatness"]) == ["pacbayes_sigma", "sharpness"]
    assert measures.select(["family:margins", "inverse_margin"]) == ["inverse_margin", "jacobian_norm",
                                                                      "spectral_margin"]
    assert set(measures.select(["family:norms"])) >= {"weight_norm", "distance_from_init", "path_norm", "vc_bound"}
    for family in measures.FAMILIES:
        assert measures.select([f"family:{family}"])
    with pytest.raises(measures.MeasureError, match=r"unknown measure 'silhoutte' \(did you mean 'silhouette'\?\)"):
        measures.select(["silhoutte"])
    with pytest.raises(measures.MeasureError, match="no measure family 'normz' \\(families: clustering, "):
        measures.select(["family:normz"])


def test_param_is_checked_against_the_signature_and_keys_the_store(embedded_zoo):
    names = ["inverse_margin", "silhouette"]
    assert parse_params(["inverse_margin.percentile=20", "silhouette.pool='max'", "silhouette.n=None"], names) == {
        "inverse_margin": {"percentile": 20}, "silhouette": {"pool": "max", "n": None}}
    assert parse_params(["silhouette.pool=avg"], names) == {"silhouette": {"pool": "avg"}}  # a bare string
    for spec, message in [("inverse_margin.gamma=2", "has no parameter 'gamma' \\(parameters: n, batch_size, "),
                          ("percentile=2", "write MEASURE.KEY=VALUE"),
                          ("silhouete.n=3", "did you mean 'silhouette'"),
                          ("weight_norm.x=1", "'weight_norm' is not among those scored"),
                          ("inverse_margin.percentile=high", "expects percentile like its default 10.0, got 'high'"),
                          ("inverse_margin.percentile=True", "expects percentile like its default 10.0, got True")]:
        with pytest.raises(measures.MeasureError, match=message):
            parse_params([spec], names)
    task = load_task(embedded_zoo("digits-bn"))
    default, changed = prepare(task, names), prepare(task, names, parse_params(["inverse_margin.percentile=20"], names))
    assert default.measures["inverse_margin"] != changed.measures["inverse_margin"]
    assert default.measures["silhouette"] == changed.measures["silhouette"]
    assert changed.params["inverse_margin"]["percentile"] == 20


def test_a_plugin_without_a_measure_is_an_error(tmp_path, capsys):
    empty = tmp_path / "nothing_here.py"
    empty.write_text("import torch\n\ndef helper(view):\n    return 1.0\n")
    assert cli.main(["score", str(tmp_path), "--plugin", str(empty), "-q"]) == 2
    assert f"plugin {empty}: registers no measure" in capsys.readouterr().err


def test_version_and_a_closed_pipe():
    run = subprocess.run([sys.executable, "-m", "benchmark", "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and re.fullmatch(r"pgdl-bench \S+\n", run.stdout)
    # `pgdl-bench measures | head -1`: the reader leaves after one line
    process = subprocess.Popen([sys.executable, "-m", "benchmark", "measures"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, bufsize=1)
    assert process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait() in (0, 141) and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_evaluate_takes_an_embedded_zoo_by_name(embedded_zoo, tmp_path, monkeypatch, capsys):
    folder = embedded_zoo("digits-bn")  # the pinned copy: found by name, never built
    task = load_task(folder)
    (tmp_path / "gap.predict").write_text(json.dumps({f"model_{m}": task.gap(m) for m in task.model_ids}))
    assert cli.main(["evaluate", "digits-bn", str(tmp_path / "gap.predict"), "--json"]) == 0
    by_name = json.loads(capsys.readouterr().out)
    assert cli.main(["evaluate", str(folder), str(tmp_path / "gap.predict"), "--json"]) == 0
    by_path = json.loads(capsys.readouterr().out)
    assert by_name.pop("provenance")["tasks"] == by_path.pop("provenance")["tasks"]  # the same task, by content
    assert by_name == by_path and by_name["kendall_tau"] == pytest.approx(1.0)


def test_new_measure_refuses_a_builtin_name(tmp_path, capsys):
    assert cli.main(["new-measure", "silhouette", "--out", str(tmp_path)]) == 2
    assert "measure name 'silhouette' is taken: measures.families.clustering:silhouette registers it" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_device_is_checked_before_anything_runs(capsys):
    with pytest.raises(SystemExit):
        cli.main(["score", "-m", "weight_norm", "--device", "gpu"])
    assert "'gpu': use cpu, cuda, cuda:N or mps" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            cli.main(["score", "-m", "weight_norm", "--device", "cuda:1"])
        assert "cuda:1: this machine has 0 CUDA device(s)" in capsys.readouterr().err
