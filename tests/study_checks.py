"""Checks of the studies' reports against computations made here, independently of the study code.

Shared by the quick smoke tests (micro recipes, in-process) and the slow tests (the small recipes
through the command line). Each takes the study's output folder and the zoo it ran on.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

import measures
from measures import ModelView
from task_loaders import load_task
from task_loaders.zoo import get_recipe, zoo_cache_dir


def results(out: Path) -> dict:
    assert (out / "report.md").stat().st_size > 200
    return json.loads((out / "results.json").read_text())


def zoo(name: str):
    return load_task(zoo_cache_dir() / name)


def error(network, x, y) -> float:
    with torch.no_grad():
        return float(np.mean(network(x).argmax(1).numpy() != y.numpy()))


def view(task, model_id, network=None) -> ModelView:
    net = network if network is not None else task.load_model(model_id).network
    return ModelView(net, task.train_split(), model_id=model_id, task_name=task.name)


def figure_ok(path: Path) -> None:
    assert path.stat().st_size > 20_000, f"{path} looks empty"


# -- fragmentation-dd ---------------------------------------------------------------------------------


def check_dd(out: Path, zoo_name: str) -> dict:
    data = results(out)
    task = zoo(zoo_name)
    figure_ok(out / "fragmentation_dd.png")
    rows = data["rows"]
    assert [r["width"] for r in rows] == sorted(task.hparams(m)["width"] for m in task.model_ids)
    x_train, y_train = task.train_split()
    x_test, y_test = task.test_split()
    for r in rows:
        net = task.load_model(r["model"]).network
        assert r["train_error"] == pytest.approx(error(net, x_train, y_train), abs=1e-12)
        assert r["test_error"] == pytest.approx(error(net, x_test, y_test), abs=1e-12)
        w = r["width"]
        assert r["parameters"] == 28 * 28 * w + w + w * 10 + 10  # Dense(784 -> w) + Dense(w -> 10)
    # the interpolation threshold: the first width whose training error is at most 0.01
    first = next((r["width"] for r in rows if r["train_error"] <= 0.01), None)
    assert data["interpolation_width"] == first
    # label noise: exactly round(0.2 N) stored training labels differ from MNIST's own
    recipe = get_recipe(zoo_name)
    from task_loaders.datasets import load_mnist

    clean = load_mnist().subset(recipe.n_train, recipe.n_test, seed=recipe.seed)
    assert torch.equal(clean.x_train, x_train)
    flipped = int((clean.y_train != y_train).sum())
    assert flipped == round(dict(recipe.fixed)["label_noise"] * len(y_train))
    assert torch.equal(clean.y_test, y_test)  # the test split stays clean
    # one fragmentation value recomputed through the registry on a view built here
    r = rows[-1]
    params = data["params"]
    assert r["fragmentation"] == measures.get("fragmentation")(view(task, r["model"]), **params)
    return data


# -- fragmentation-weight-norm ------------------------------------------------------------------------


def _weight_layers(net):
    from task_loaders.keras_layers import Conv2D, Dense

    return [(m.conv if isinstance(m, Conv2D) else m.linear) for m in net.children() if isinstance(m, (Conv2D, Dense))]


def check_weight_norm(out: Path, zoo_name: str) -> dict:
    data = results(out)
    task = zoo(zoo_name)
    figure_ok(out / "fragmentation_weight_norm.png")
    for key, entry in data["rescaling"].items():
        model_id = key.removeprefix("model_")
        net = task.load_model(model_id).network
        layers = _weight_layers(net)
        k = entry["pair"]
        squares = lambda t: float(np.sum(np.square(t.detach().numpy().astype(np.float64))))  # noqa: E731
        first = squares(layers[k].weight) + squares(layers[k].bias)
        second = squares(layers[k + 1].weight)
        base = entry["by_factor"]["1"]
        assert base["weight_norm"] == pytest.approx(sum(squares(p) for p in net.state_dict().values()), rel=1e-9)
        for c, row in entry["by_factor"].items():
            c = float(c)
            # sum of squares: the pair's terms scale by c^2 and 1/c^2, the rest stays
            predicted = base["weight_norm"] + (c * c - 1) * first + (1 / (c * c) - 1) * second
            assert row["weight_norm"] == pytest.approx(predicted, rel=1e-6)
            if math.log2(c) == round(math.log2(c)):  # exact in floating point: identical values
                assert row["fragmentation"] == base["fragmentation"]
                assert row["fragmentation_hidden"] == base["fragmentation_hidden"]
                assert row["max_logit_change"] == 0.0
            else:
                assert row["max_logit_change"] < 1e-4
    zoo_data = data["zoo"]
    assert np.allclose(zoo_data["gaps"], [task.gap(m) for m in zoo_data["models"]])
    kept = [i for i, m in enumerate(zoo_data["models"]) if m in zoo_data["trained"]]
    assert zoo_data["scores"]["fragmentation"]["n"] == len(kept)
    gaps = np.array([task.gap(m) for m in zoo_data["models"]])[kept]
    frag, norm = (np.array(zoo_data["values"][q])[kept] for q in ("fragmentation", "weight_norm"))
    tau = stats.kendalltau(frag, gaps).statistic
    assert zoo_data["scores"]["fragmentation"]["kendall_tau"] == pytest.approx(tau, nan_ok=True)
    # partial rank correlation: correlation of the residuals of the ranks regressed on the control
    ranks = [stats.rankdata(v) for v in (frag, gaps, norm)]
    design = np.column_stack([np.ones(len(gaps)), ranks[2]])
    residual = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in ranks[:2]]
    expected = stats.pearsonr(*residual).statistic
    assert zoo_data["partial"]["fragmentation"]["given_weight_norm"]["r"] == pytest.approx(expected, abs=1e-9)
    return data


# -- fragmentation-training ---------------------------------------------------------------------------


def check_training(out: Path, zoo_name: str) -> dict:
    data = results(out)
    task = zoo(zoo_name)
    figure_ok(out / "fragmentation_training.png")
    epochs = get_recipe(zoo_name).epochs
    for key, curve in data["models"].items():
        model_id = key.removeprefix("model_")
        assert len(curve["test_error"]) == epochs + 1 == len(curve["fragmentation"])
        # the last checkpoint is the zoo's model, bit for bit
        assert curve["final_vs_zoo_max_weight_difference"] == 0.0
        assert curve["test_error"][-1] == pytest.approx(1 - task.test_acc(model_id), abs=1e-12)
        for q in ("fragmentation", "fragmentation_hidden"):
            x, y = np.array(curve[q]), np.array(curve["test_error"])
            expected = stats.spearmanr(x, y).statistic if np.ptp(x) and np.ptp(y) else math.nan
            assert curve[f"spearman_{q}"] == pytest.approx(expected, nan_ok=True)
            late = curve["late_from_epoch"]
            assert late == (epochs + 1) // 3
            x, y = x[late:], y[late:]
            expected = stats.spearmanr(x, y).statistic if np.ptp(x) and np.ptp(y) else math.nan
            assert curve[f"spearman_{q}_late"] == pytest.approx(expected, nan_ok=True)
        # the final checkpoint's fragmentation, recomputed on the zoo's model through the registry
        value = measures.get("fragmentation")(view(task, model_id), **data["params"])
        assert curve["fragmentation"][-1] == value
    return data


# -- fragmentation-layers -----------------------------------------------------------------------------


def check_layers(out: Path, zoo_name: str) -> dict:
    from benchmark.scores.scoring import conditional_mutual_information

    data = results(out)
    task = zoo(zoo_name)
    figure_ok(out / "fragmentation_layers.png")
    for part, values in data["values"].items():
        kept = [m for m in data["trained"] if not math.isnan(values[f"model_{m}"])]
        gaps = np.array([task.gap(m) for m in kept])
        vector = np.array([values[f"model_{m}"] for m in kept])
        assert data["scores"][part]["n"] == len(kept)
        assert data["scores"][part]["kendall_tau"] == pytest.approx(stats.kendalltau(vector, gaps).statistic,
                                                                    nan_ok=True)
        if len(kept) == len(task.model_ids):  # the whole zoo: the official score on the task itself
            assert data["scores"][part]["cmi"] == pytest.approx(conditional_mutual_information(values, task).cmi)
    last = len(data["layers"]) - 2  # the deepest hidden layer, recomputed here
    model_id = task.model_ids[0]
    value = measures.get("fragmentation_hidden")(view(task, model_id), layer=last, **data["params"])
    assert data["values"][f"hidden {last + 1}"][f"model_{model_id}"] == value
    return data


# -- bn -------------------------------------------------------------------------------------------------


def check_bn(out: Path, zoo_name: str) -> dict:
    from measures.stats.representations import STATISTICS

    data = results(out)
    task = zoo(zoo_name)
    figure_ok(out / "bn_study.png")
    with open(out / "per_model.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["model"] for r in rows} == set(task.model_ids)
    for key, entry in data["summary"].items():
        stat, bn, index = key.split("|")
        values = [float(r[stat]) for r in rows if r["batchnorm"] == str(bn == "bn") and r["layer_index"] == index]
        finite = [v for v in values if not math.isnan(v)]
        assert entry["mean"] == pytest.approx(np.mean(finite)) and entry["min"] == min(finite)
    assert {k.split("|")[0] for k in data["summary"]} >= set(STATISTICS) | {"unit_cluster_purity"}
    # element sparsity and the per-position implicit clusters of one model's first hidden layer, by hand
    model_id = task.model_ids[0]
    v = view(task, model_id)
    v.sample_size = data["samples"]
    x, y = v.sample()
    h = x
    for name, module in v.network.named_children():
        h = module(h)
        if name == v.hidden_layers[0]:
            break
    h = h.detach().numpy().reshape(len(x), -1)
    row = next(r for r in rows if r["model"] == model_id and r["layer_index"] == "1")
    assert float(row["element_sparsity"]) == pytest.approx(np.mean(h == 0), abs=1e-12)
    purities, sizes = [], []
    for unit in range(h.shape[1]):
        members = y.numpy()[h[:, unit] > 0]
        if len(members):
            purities.append(np.bincount(members, minlength=10).max() / len(members))
            sizes.append(len(members) / len(x))
    assert float(row["unit_cluster_purity"]) == pytest.approx(np.mean(purities), rel=1e-9)
    assert float(row["unit_cluster_size"]) == pytest.approx(np.mean(sizes), rel=1e-9)
    errors = [1 - task.test_acc(m) for m in task.model_ids if not task.hparams(m)["batchnorm"]]
    assert sorted(data["test_error"]["nobn"]) == pytest.approx(sorted(errors), abs=1e-12)
    # the paired comparison of twins (same seed), recomputed with scipy from the per-model rows
    seed_of = {m: task.hparams(m)["seed"] for m in task.model_ids}
    for key, entry in data["paired"]["layers"].items():
        stat, index = key.split("|")
        pick = {(seed_of[r["model"]], r["batchnorm"] == "True"): float(r[stat]) for r in rows
                if r["layer_index"] == index}
        seeds = sorted({s for s, _ in pick})
        diff = np.array([pick[(s, True)] - pick[(s, False)] for s in seeds])
        assert entry["pairs"] == len(seeds) and entry["bn_higher"] == int(np.sum(diff > 0))
        assert entry["mean_difference"] == pytest.approx(diff.mean(), abs=1e-12)
        expected = stats.ttest_rel([pick[(s, True)] for s in seeds], [pick[(s, False)] for s in seeds]).pvalue
        assert entry["p"] == pytest.approx(expected, nan_ok=True) or np.ptp(diff) == 0
    error = {m: 1 - task.test_acc(m) for m in task.model_ids}
    seeds = sorted({seed_of[m] for m in task.model_ids})
    twin = {(seed_of[m], bool(task.hparams(m)["batchnorm"])): error[m] for m in task.model_ids}
    diff = [twin[(s, True)] - twin[(s, False)] for s in seeds]
    assert data["paired"]["test_error"]["mean_difference"] == pytest.approx(np.mean(diff), abs=1e-12)
    return data
