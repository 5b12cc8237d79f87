"""``benchmark.score`` runs the pipeline of ``pgdl-bench score`` from Python and returns what ``--json`` prints;
output folders are checked before any work."""

import json

import pytest

import benchmark
from benchmark.cli import main


def test_python_score_returns_what_score_json_prints(toy_task_path, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert main(["score", str(toy_task_path), "-m", "weight_norm", "--json", "-q", "--backend", "serial",
                 "--store", str(store), "--out", str(tmp_path / "cli")]) == 0
    printed = json.loads(capsys.readouterr().out)
    returned = benchmark.score(str(toy_task_path), ["weight_norm"], backend="serial", store=store,
                               out=tmp_path / "api", progress=False)
    assert returned["reused"] == printed["computed"] and returned["computed"] == 0
    cli_scores, api_scores = printed["tasks"]["pgdl_toy_data"]["weight_norm"], returned["tasks"]["pgdl_toy_data"]["weight_norm"]
    for key in ("cmi", "kendall_tau", "granulated_kendall", "predictions", "intervals", "conditions"):
        assert api_scores[key] == cli_scores[key], key


@pytest.mark.parametrize("command", ["score", "leaderboard"])
def test_an_output_path_that_is_a_file_is_refused_before_any_work(toy_task_path, tmp_path, capsys, command):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    store = tmp_path / "s.sqlite"
    code = main([command, str(toy_task_path), "-m", "weight_norm", "-q", "--backend", "serial", "--store", str(store),
                 "--out", str(blocker)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(blocker) in err[0] and "not a folder" in err[0]
    assert not store.exists()  # refused before the store was even opened
