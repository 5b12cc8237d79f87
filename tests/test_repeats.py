"""Repeats: the registry's stochastic flags, repeat seeds (repeat 0 = the seeds stored results came from),
the store's repeat keys, and score/leaderboard/evaluate output with intervals."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

import measures
from benchmark.bootstrap import t_interval
from benchmark.cli import main
from benchmark.repeats import summarize
from benchmark.runner import prepare, run_measures, stored_repeats, stored_values
from benchmark.executor import SerialExecutor
from benchmark.store import ResultStore
from measures import ModelView
from task_loaders import architectures, load_task
from task_loaders.keras_layers import build_network

DETERMINISTIC = {"weight_norm", "distance_from_init", "parameter_count", "vc_bound", "log_prod_spectral",
                 "log_sum_spectral", "log_prod_frobenius", "log_sum_frobenius", "path_norm",
                 "label_mixup_accuracy"}  # the winners' LWM reads the split in its stored order


class RecordingView(ModelView):
    """A model view that notes whether a measure drew anything at random from it (``rng``, ``seed`` or a
    proper subset of the training split)."""

    random = False

    def rng(self, stream=None):
        self.random = True
        return super().rng(stream)

    def seed(self, key):  # a stream shared by the models of a task (the winners' task_rng)
        self.random = True
        return super().seed(key)

    def sample_indices(self, n=None):
        before = self.random  # the sample seeds itself through ``seed``: only a proper subset counts
        index = super().sample_indices(n)
        self.random = before or len(index) < self.num_train  # a proper subset is a random draw
        return index


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    layers = architectures.vgg((8, 8, 1), 10, width=4, depth=1, dense_units=16)
    init, net = build_network(layers, (8, 8, 1)), build_network(layers, (8, 8, 1))
    x = torch.randn(600, 1, 8, 8)
    with torch.no_grad():
        y = net(x).argmax(1)
    y[::7] = torch.arange(10).repeat(100)[: len(y[::7])]  # every class present, some errors
    return net, init, x, y


def _view(tiny, repeat, cls=ModelView):
    net, init, x, y = tiny
    return cls(net, (x, y), initial_network=init, num_classes=10, model_id="m", task_name="t", repeat=repeat,
               sample_size=200)


BUILTIN = sorted(n for n in measures.available() if measures.get(n).origin.startswith("measures."))


@pytest.mark.parametrize("name", BUILTIN)
def test_stochastic_flag_matches_what_the_measure_draws(name, tiny):
    """Deterministic measures draw nothing at random and give identical values under two repeat seeds;
    stochastic ones draw (view.rng, or a proper subset as the shared sample)."""
    entry = measures.get(name)
    view = _view(tiny, 0, RecordingView)
    value = entry(view)
    assert view.random == entry.stochastic, f"{name}: stochastic={entry.stochastic}, drew={view.random}"
    if not entry.stochastic:
        assert entry(_view(tiny, 1)) == value
        assert name in DETERMINISTIC


def test_builtin_deterministic_set(capsys):
    assert {n for n in BUILTIN if not measures.get(n).stochastic} == DETERMINISTIC
    assert main(["measures", "--json"]) == 0  # listed with the flag
    listed = json.loads(capsys.readouterr().out)
    assert {n for n in BUILTIN if not listed[n]["stochastic"]} == DETERMINISTIC


def test_repeat_zero_keeps_the_old_seeds_and_other_repeats_differ(tiny):
    def old_seed(key):  # how ModelView seeded before repeats existed
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")

    v0, v1, v2 = (_view(tiny, k) for k in (0, 1, 2))
    assert v0.rng("x").random(4).tolist() == np.random.default_rng(old_seed("t/m/x")).random(4).tolist()
    assert v0.seed("t/sample") == old_seed("t/sample")
    assert v1.rng("x").random(4).tolist() == np.random.default_rng(old_seed("t/m/x#r1")).random(4).tolist()
    samples = [set(v.sample_indices().tolist()) for v in (v0, v1, v2)]
    assert samples[0] != samples[1] != samples[2] and len(samples[1]) == 200
    # the sample is the task's, not the model's: another model of the task gets the same one in a repeat
    other = ModelView(tiny[0], (tiny[2], tiny[3]), num_classes=10, model_id="other", task_name="t", repeat=1,
                      sample_size=200)
    assert set(other.sample_indices().tolist()) == samples[1]
    # a split no larger than the sample: every repeat gets all of it
    small = [ModelView(tiny[0], (tiny[2][:150], tiny[3][:150]), num_classes=10, task_name="t", repeat=k,
                       sample_size=200).sample_indices().tolist() for k in (0, 3)]
    assert small[0] == small[1] == list(range(150))
    with pytest.raises(ValueError, match="repeat"):
        _view(tiny, -1)


def test_t_interval_by_hand():
    values = [0.10, 0.14, 0.12, 0.16]
    mean, low, high = t_interval(values)
    s = math.sqrt(sum((v - 0.13) ** 2 for v in values) / 3)
    half = 3.182446305284263 * s / 2  # t_{0.975, 3} = 3.1824...
    assert mean == pytest.approx(0.13) and low == pytest.approx(0.13 - half) and high == pytest.approx(0.13 + half)
    assert (low, high) == pytest.approx(stats.t.interval(0.95, 3, loc=mean, scale=stats.sem(values)))
    assert t_interval([0.2], exact=True) == (0.2, 0.2, 0.2)
    assert t_interval([0.2]) == (0.2, None, None)  # a stochastic measure scored once: no interval
    assert t_interval([0.3, 0.3, 0.3]) == (0.3, 0.3, 0.3)


def test_summarize_means_and_intervals():
    def scores(cmi, tau, psi):
        return {"cmi": cmi, "conditions": {"a|b": cmi, "b|a": cmi}, "kendall_tau": tau,
                "granulated_kendall": {"a": psi, "b": psi, "psi": psi},
                "robust_sign_error": {"robust": 0.25 + cmi, "worst_hyperparameter": "a", "worst_cell": 1.0,
                                      "mean": 0.2, "sign": 1, "noise_filter": None,
                                      "per_hyperparameter": {"a": {"mean": 0.25 + cmi, "p90": 0.5, "max": 1.0,
                                                                   "cells": 4}}},
                "num_models": 8}

    out = summarize([scores(0.1, 0.2, 0.3), scores(0.2, 0.4, 0.5), scores(0.3, 0.6, 0.1)])
    assert out["cmi"] == pytest.approx(0.2) and out["kendall_tau"] == pytest.approx(0.4)
    assert out["granulated_kendall"]["psi"] == pytest.approx(0.3) and out["conditions"]["a|b"] == pytest.approx(0.2)
    assert out["repeats"] == 3 and out["repeat_scores"]["cmi"] == [0.1, 0.2, 0.3]
    assert out["intervals"]["cmi"] == pytest.approx(list(t_interval([0.1, 0.2, 0.3])[1:]))
    assert out["robust_sign_error"]["robust"] == pytest.approx(0.45)
    assert out["intervals"]["robust_sign_error"] == pytest.approx(list(t_interval([0.35, 0.45, 0.55])[1:]))
    once = summarize([scores(0.1, 0.2, 0.3)], stochastic=False)
    assert once["intervals"]["cmi"] == [0.1, 0.1] and "repeat_scores" not in once
    assert summarize([scores(0.1, 0.2, 0.3)])["intervals"]["cmi"] is None


# -- the store and the command line on the toy task -------------------------------------------------

CALLS = []


@measures.measure("test_noisy_norm", source="tests", sign=-1)
def noisy_norm(view) -> float:
    """Weight norm plus seeded noise: a cheap stochastic measure."""
    CALLS.append(view.repeat)
    weights = sum(float(p.detach().square().sum()) for p in view.network.parameters())
    return weights + view.rng("test_noisy_norm").normal()


def test_store_keeps_each_repeat_under_a_suffixed_params_key(toy_task_path, tmp_path):
    task = load_task(toy_task_path)
    run = prepare(task, ["test_noisy_norm", "weight_norm"], repeats=3)
    assert run.num_repeats("test_noisy_norm") == 3 and run.num_repeats("weight_norm") == 1
    with ResultStore(tmp_path / "r.sqlite") as store:
        CALLS.clear()
        report = run_measures([run], store, SerialExecutor(), progress=False)
        assert report.computed == 18 * 4 and not report.failures and sorted(set(CALLS)) == [0, 1, 2]
        params = {r[0] for r in store.db.execute("SELECT params FROM results WHERE measure='test_noisy_norm'")}
        assert params == {"{}", "{}#r1", "{}#r2"}
        assert {r[0] for r in store.db.execute("SELECT params FROM results WHERE measure='weight_norm'")} == {"{}"}
        repeats = stored_repeats(store, run, "test_noisy_norm")
        assert len(repeats) == 3 and repeats[0] == stored_values(store, run, "test_noisy_norm")
        assert repeats[0] != repeats[1]
        # repeat 0 is what a run without repeats computes and stores
        single = prepare(task, ["test_noisy_norm"])
        assert stored_values(store, single, "test_noisy_norm") == repeats[0]
        # asking for more repeats computes only the new ones
        CALLS.clear()
        more = run_measures([prepare(task, ["test_noisy_norm", "weight_norm"], repeats=4)], store, SerialExecutor(),
                            progress=False)
        assert more.computed == 18 and more.reused == 18 * 4 and set(CALLS) == {3}


def test_score_and_evaluate_json_with_repeats(toy_task_path, tmp_path, capsys):
    args = ["score", str(toy_task_path), "-m", "test_noisy_norm", "-m", "weight_norm", "--repeats", "3", "-q",
            "--backend", "serial", "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "p")]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["uncertainty"]["repeats"] == 3
    noisy, norm = out["tasks"]["pgdl_toy_data"]["test_noisy_norm"], out["tasks"]["pgdl_toy_data"]["weight_norm"]
    assert isinstance(noisy["cmi"], float) and noisy["repeats"] == 3 and norm["repeats"] == 1
    per_repeat = []
    for k, path in enumerate(noisy["predict_files"]):
        assert path.endswith("test_noisy_norm/pgdl_toy_data.predict" if k == 0
                             else f"test_noisy_norm/repeat-{k}/pgdl_toy_data.predict")
        assert main(["evaluate", str(toy_task_path), path, "--json", "--sign", "-1"]) == 0
        per_repeat.append(json.loads(capsys.readouterr().out))
    assert noisy["repeat_scores"]["cmi"] == [e["cmi"] for e in per_repeat]
    assert noisy["cmi"] == pytest.approx(np.mean([e["cmi"] for e in per_repeat]), abs=1e-15)
    assert noisy["intervals"]["cmi"] == pytest.approx(list(t_interval([e["cmi"] for e in per_repeat])[1:]))
    assert noisy["repeat_scores"]["robust_sign_error"] == [e["robust_sign_error"]["robust"] for e in per_repeat]
    assert norm["intervals"]["cmi"] == [norm["cmi"], norm["cmi"]]  # deterministic: exact
    best = max(("test_noisy_norm", "weight_norm"), key=lambda n: out["tasks"]["pgdl_toy_data"][n]["cmi"])
    for entry in (noisy, norm):
        assert entry["comparison_with_best"]["best"] == best
    assert out["tasks"]["pgdl_toy_data"][best]["comparison_with_best"]["tied_with_best"] is True
    # the table shows the intervals and the comparison
    assert main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:8] == ["task", "measure", "CMI", "x100", "tau", "psi", "robust", "vs"]
    row = next(line for line in table if "weight_norm" in line)
    assert f"{norm['cmi'] * 100:.2f} +-0.00" in row and ("best" in row or "tied p=" in row or "worse p=" in row)
