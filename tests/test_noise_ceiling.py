"""Noise ceilings: the split-half gap ceiling and the replicate ceiling, against direct loops."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy.stats import kendalltau

from benchmark.cli import main
from benchmark.noise_ceiling import (
    gap_noise_ceiling, random_halves, replicate_ceiling, split_half_gaps, task_noise_ceiling,
)
from tests.reference_cmi import reference_cmi
from benchmark.scores.scoring import TaskArrays
from task_loaders import TaskFormatError, load_task
from task_loaders.pinned import pinned_zoo


def grid_arrays(sizes: dict[str, int]) -> tuple[TaskArrays, list[dict]]:
    """A complete grid over ``sizes`` (name -> number of values): TaskArrays and each model's hparams."""
    names = list(sizes)
    combos = list(itertools.product(*(range(sizes[n]) for n in names)))
    hparams = [dict(zip(names, c)) for c in combos]
    codes = {n: np.array([h[n] for h in hparams], dtype=np.int64) for n in names}
    arrays = TaskArrays(keys=[f"model_{i}" for i in range(len(combos))], gaps=np.zeros(len(combos)), names=names,
                        codes=codes, sizes=dict(sizes))
    return arrays, hparams


def loop_ceiling(hparams: list[dict], train_acc, correct, halves) -> tuple[float, float]:
    """The definition, one split and one model at a time, scored by the official loop and scipy."""
    cmis, taus = [], []
    for half in halves:
        a = [i for i in range(len(half)) if half[i]]
        b = [i for i in range(len(half)) if not half[i]]
        gap_a, gap_b = [], []
        for m in range(len(hparams)):
            gap_a.append(train_acc[m] - sum(bool(correct[m][i]) for i in a) / len(a))
            gap_b.append(train_acc[m] - sum(bool(correct[m][i]) for i in b) / len(b))
        models = {f"model_{m}": {"hparams": hparams[m], "gap": gap_b[m]} for m in range(len(hparams))}
        cmis.append(reference_cmi({f"model_{m}": gap_a[m] for m in range(len(hparams))}, models)[0])
        taus.append(kendalltau(gap_a, gap_b).statistic)
    return float(np.mean(cmis)), float(np.mean(taus))


def test_identical_halves_give_a_perfect_ceiling():
    """Samples in identical pairs, each split putting one of each pair in each half: both halves measure
    the same (distinct) gaps, so the gap predicts itself perfectly: CMI 1 and tau 1 (by hand)."""
    arrays, _ = grid_arrays({"h1": 2, "h2": 2, "h3": 2})
    base = np.tril(np.ones((8, 7), dtype=bool), k=-1)  # model m gets m of 7 samples right: 8 distinct gaps
    correct = np.repeat(base, 2, axis=1)  # columns 2k and 2k+1 identical
    choices = np.array([[0, 0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 1, 0, 1], [1, 1, 0, 0, 1, 1, 0]], dtype=bool)
    halves = np.stack([choices, ~choices], axis=2).reshape(3, 14)  # one of each identical pair per half
    c = gap_noise_ceiling(arrays, np.ones(8), correct, halves=halves)
    assert c["cmi"] == pytest.approx(1.0, abs=1e-9) and c["kendall_tau"] == pytest.approx(1.0)
    assert c["splits"] == 3 and c["test_samples"] == 14 and c["cmi_sd"] == pytest.approx(0.0, abs=1e-9)


def test_hand_built_case_matches_a_direct_loop():
    arrays, hparams = grid_arrays({"h1": 2, "h2": 2, "h3": 2})
    correct = np.array([[1, 1, 0, 1, 0, 1], [1, 0, 0, 1, 1, 1], [0, 1, 1, 0, 0, 1], [1, 1, 1, 1, 0, 0],
                        [0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0], [0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 0, 0]], dtype=bool)
    train_acc = np.array([1.0, 0.9, 0.8, 0.95, 1.0, 0.85, 0.9, 0.7])
    halves = np.array([[1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 0], [0, 0, 1, 1, 1, 0], [1, 0, 0, 1, 0, 1]], dtype=bool)
    c = gap_noise_ceiling(arrays, train_acc, correct, halves=halves)
    cmi, tau = loop_ceiling(hparams, train_acc, correct, halves)
    assert 0 < c["cmi"] < 1
    assert c["cmi"] == pytest.approx(cmi, abs=1e-12) and c["kendall_tau"] == pytest.approx(tau, abs=1e-12)


def test_random_case_matches_a_direct_loop():
    rng = np.random.default_rng(3)
    arrays, hparams = grid_arrays({"a": 2, "b": 3, "c": 2})
    correct = rng.random((12, 41)) < rng.uniform(0.5, 0.95, size=(12, 1))
    train_acc = rng.uniform(0.9, 1.0, size=12)
    halves = random_halves(41, 25, seed=5)
    c = gap_noise_ceiling(arrays, train_acc, correct, halves=halves)
    cmi, tau = loop_ceiling(hparams, train_acc, correct, halves)
    assert c["cmi"] == pytest.approx(cmi, abs=1e-12) and c["kendall_tau"] == pytest.approx(tau, abs=1e-12)
    # the default: that many random halvings from the seed
    assert gap_noise_ceiling(arrays, train_acc, correct, n_splits=25, seed=5)["cmi"] == c["cmi"]


def test_random_halves_and_split_gaps():
    halves = random_halves(9, 50, seed=1)
    assert halves.shape == (50, 9) and (halves.sum(axis=1) == 4).all()
    assert len({row.tobytes() for row in halves}) > 30  # random: 126 possible halves, ~41 distinct expected
    correct = np.array([[1, 0, 1, 1, 0, 1, 1, 1, 0]], dtype=bool)
    gap_a, gap_b = split_half_gaps(np.array([1.0]), correct, halves[:1])
    a = halves[0]
    assert gap_a[0, 0] == pytest.approx(1 - correct[0, a].mean())
    assert gap_b[0, 0] == pytest.approx(1 - correct[0, ~a].mean())


def test_replicate_ceiling_matches_a_direct_loop():
    rng = np.random.default_rng(8)
    arrays, hparams = grid_arrays({"a": 2, "b": 2, "c": 2})
    gaps = rng.normal(size=(3, 8))
    c = replicate_ceiling(arrays, gaps)
    cmis, taus, per_target = [], [], {}
    for i in range(3):
        for j in range(3):
            if i != j:
                models = {f"model_{m}": {"hparams": hparams[m], "gap": gaps[j, m]} for m in range(8)}
                cmis.append(reference_cmi({f"model_{m}": gaps[i, m] for m in range(8)}, models)[0])
                taus.append(kendalltau(gaps[i], gaps[j]).statistic)
                per_target.setdefault(j, []).append(cmis[-1])
    assert c["pairs"] == 6 and c["replicates"] == 3
    assert [p["cmi"] for p in c["per_replicate"]] == pytest.approx([np.mean(per_target[j]) for j in range(3)])
    assert c["cmi"] == pytest.approx(np.mean(cmis), abs=1e-12) and c["kendall_tau"] == pytest.approx(np.mean(taus))
    with pytest.raises(ValueError):
        replicate_ceiling(arrays, gaps[:1])


def test_pinned_zoo_ceiling_and_a_tampered_correctness_file(tmp_path, copy_tree, capsys):
    source = pinned_zoo("digits-nobn")
    task = load_task(source)
    c = task_noise_ceiling(task)
    assert c["splits"] == 200 and c["test_samples"] == len(task.test_split()[1])
    assert 0 < c["cmi"] < 1 and -1 <= c["kendall_tau"] <= 1
    assert task_noise_ceiling(load_task(source)) == c  # the same splits every time
    copy = copy_tree(source, tmp_path / "digits-nobn")
    flipped = np.load(copy / "model_3" / "test_correct.npy")
    flipped[0] = not flipped[0]
    np.save(copy / "model_3" / "test_correct.npy", flipped)
    with pytest.raises(TaskFormatError, match=r"model_3/test_correct.npy: accuracy .* differs"):
        task_noise_ceiling(load_task(copy))
    (copy / "model_3" / "test_correct.npy").write_text(json.dumps([1, 0]))
    with pytest.raises(TaskFormatError, match="model_3/test_correct.npy: not a readable numpy array"):
        task_noise_ceiling(load_task(copy))
    # `score` still prints the measures, then one line naming the file, and exits 2
    status = main(["score", str(copy), "-m", "parameter_count", "--backend", "serial", "-q",
                   "--store", str(tmp_path / "s.db"), "--out", str(tmp_path / "pred")])
    out, err = capsys.readouterr()
    assert status == 2 and "digits-nobn  parameter_count" in out and "gap noise ceiling" not in out
    errors = [line for line in err.splitlines() if line.startswith("pgdl-bench: error:")]
    assert errors == [f"pgdl-bench: error: {copy / 'model_3' / 'test_correct.npy'}: not a readable numpy array "
                      "file (.npy of bools expected)"]
