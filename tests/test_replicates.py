"""Training seeds and replicate sets: --seed, --replicates, and scores over replicates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.running.executor import SerialExecutor
from benchmark.noise_ceiling import replicate_set_ceiling
from benchmark.scores.scoring import evaluate
from benchmark.data.zoo_builder import build_replicates, build_zoo
from task_loaders import load_task
from task_loaders.keras_weights import read_weights
from task_loaders.replicates import read_replicate_set
from task_loaders.zoo import RECIPES, Recipe

MICRO = Recipe("digits-micro", "4 tiny digits models for replicate tests", dataset="digits", architecture="vgg",
               grid=(("convwidth", (4, 8)), ("dropout", (0.0, 0.5))), fixed=(("depth", 1),), epochs=2,
               n_train=200, n_test=200)


@pytest.fixture(scope="module")
def replicate_set(tmp_path_factory):
    RECIPES[MICRO.name] = MICRO
    try:
        out = tmp_path_factory.mktemp("reps") / "micro"
        yield build_replicates(MICRO.name, 3, 3, out, SerialExecutor(), progress=False)
    finally:
        RECIPES.pop(MICRO.name, None)


def test_with_seed_changes_only_the_training_seed():
    recipe = RECIPES["digits-nobn"]
    assert recipe.with_seed(recipe.seed) is recipe and recipe.build_name == "digits-nobn"
    other = recipe.with_seed(5)
    assert other.build_name == "digits-nobn-seed5" and other.training_seed == 5 and other.seed == recipe.seed
    assert other.models() == recipe.models() and other.fingerprint() != recipe.fingerprint()
    hparams = recipe.models()[3][1]
    assert other.model_seed(hparams) != recipe.model_seed(hparams)
    assert other.with_seed(recipe.seed) == recipe  # back to the recipe's own seed


def test_replicate_set_layout(replicate_set):
    rs = read_replicate_set(replicate_set)
    assert rs.seeds == (3, 4, 5) and [m.name for m in rs.members] == ["digits-micro-seed3", "digits-micro-seed4",
                                                                         "digits-micro-seed5"]
    tasks = [load_task(m) for m in rs.members]
    data = [(m / "dataset_1" / "train" / "shard_0.tfrecord").read_bytes() for m in rs.members]
    assert data[0] == data[1] == data[2]  # the same data subset: only the training seed differs
    weights = [read_weights(m / "model_0" / "weights_init.hdf5")[0] for m in rs.members]
    assert not np.array_equal(weights[0], weights[1]) and not np.array_equal(weights[1], weights[2])
    assert [json.loads((m / "zoo.json").read_text())["training_seed"] for m in rs.members] == [3, 4, 5]
    assert all(t.model_ids == tasks[0].model_ids for t in tasks)
    # a replicate is exactly the single build from that seed
    RECIPES[MICRO.name] = MICRO
    try:
        single = build_zoo(MICRO.with_seed(4), replicate_set.parent / "single", SerialExecutor(), progress=False)
    finally:
        RECIPES.pop(MICRO.name, None)
    for name in ("weights.hdf5", "test_correct.npy"):
        assert (single / "model_2" / name).read_bytes() == (rs.members[1] / "model_2" / name).read_bytes()


def test_score_reports_each_replicate_and_mean_and_spread(replicate_set, tmp_path, capsys):
    args = ["score", str(replicate_set), "-m", "parameter_count", "-m", "weight_norm", "--backend", "serial", "-q",
            "--store", str(tmp_path / "s.db"), "--out", str(tmp_path / "pred")]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    members = ["digits-micro-seed3", "digits-micro-seed4", "digits-micro-seed5"]
    assert set(out["tasks"]) == set(members)
    summary = out["replicate_sets"]["micro"]
    assert summary["members"] == members and summary["seeds"] == [3, 4, 5]
    for measure in ("parameter_count", "weight_norm"):
        cmis = [out["tasks"][m][measure]["cmi"] for m in members]
        again = [evaluate(out["tasks"][m][measure]["predictions"], load_task(replicate_set / m))["cmi"]
                 for m in members]
        assert cmis == again
        s = summary["measures"][measure]["cmi"]
        assert s["per_replicate"] == cmis
        assert s["mean"] == pytest.approx(np.mean(cmis)) and s["sd"] == pytest.approx(np.std(cmis, ddof=1))
    ceiling = summary["replicate_ceiling"]
    assert ceiling == replicate_set_ceiling([load_task(replicate_set / m) for m in members])
    assert ceiling["pairs"] == 6
    assert set(out["noise_ceiling"]) == set(members)  # every member has its split-half ceiling too
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "micro: 3 replicates (training seeds 3, 4, 5)" in text
    assert "replicate gap ceiling" in text and text.count("gap noise ceiling") == 3


def test_leaderboard_on_a_replicate_set(replicate_set, tmp_path):
    out = tmp_path / "lb"
    assert main(["leaderboard", str(replicate_set), "-m", "parameter_count", "-m", "weight_norm", "--backend",
                 "serial", "-q", "--store", str(tmp_path / "s.db"), "--out", str(out)]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    members = ["digits-micro-seed3", "digits-micro-seed4", "digits-micro-seed5"]
    assert [t["name"] for t in board["tasks"]] == members
    rows = {r["measure"]: r for r in board["rows"]}
    ceiling = replicate_set_ceiling([load_task(replicate_set / m) for m in members])
    row = rows["replicate gap ceiling"]
    assert row["reference"]
    assert [row["tasks"][m]["cmi"] for m in members] == [p["cmi"] for p in ceiling["per_replicate"]]
    assert row["mean_cmi_x100"] == pytest.approx(ceiling["cmi"] * 100)  # each member is predicted by 2 others
    summary = board["replicate_sets"]["micro"]["measures"]["weight_norm"]["cmi"]
    assert summary["per_replicate"] == [rows["weight_norm"]["tasks"][m]["cmi"] for m in members]
    assert summary["sd"] == pytest.approx(np.std(summary["per_replicate"], ddof=1))
    assert "| replicate gap ceiling |" in (out / "leaderboard.md").read_text()
