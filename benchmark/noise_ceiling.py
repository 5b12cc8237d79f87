"""Noise ceilings: how well any measure could predict generalization gaps that are themselves noisy.

A zoo's gaps are measured on a finite test set. ``gap_noise_ceiling`` splits the test set into two
random halves many times and scores the gap measured on one half (train accuracy minus accuracy on
half A) as a "measure" of the gap measured on the other half (half B), with the official CMI and
Kendall's tau of ``benchmark.scores``; the ceiling is the mean over splits. A measure that predicted
the half-B gaps better than half A's own gaps would be fitting test-set noise.

``replicate_ceiling`` does the same across training seeds: one replicate's gaps as the measure of
another's, over all ordered pairs of replicates, which says how much of the gap the hyperparameters
alone determine.

The gaps of all splits come from one matrix product of the models' per-sample correctness with the
split masks, and all splits are scored at once by the batched kernels ``scores.cmi.cmi_batch`` and
``scores.kendall.kendall_tau_batch``; a test checks both against a loop of the official scorer and scipy.
"""

from __future__ import annotations

import math

import numpy as np

from task_loaders import Task, TaskFormatError
from task_loaders.zoo import CORRECTNESS_FILES, read_correctness

from .scores.cmi import cmi_batch
from .scores.kendall import kendall_tau_batch
from .scores.scoring import TaskArrays

SPLIT_HALF_ROW = "gap noise ceiling"
REPLICATE_ROW = "replicate gap ceiling"
DEFAULT_SPLITS = 200


def random_halves(n_samples: int, n_splits: int, seed: int = 0) -> np.ndarray:
    """(n_splits, n_samples) bool: each row True on a uniformly random half (floor(n/2) samples)."""
    if n_samples < 2:
        raise ValueError(f"a split needs at least 2 test samples, not {n_samples}")
    rng = np.random.default_rng(seed)
    ranks = rng.random((n_splits, n_samples)).argsort(axis=1).argsort(axis=1)
    return ranks < n_samples // 2


def split_half_gaps(train_acc: np.ndarray, correct: np.ndarray, halves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaps measured on half A (``halves`` True) and on half B (False) of every split: two (splits, models)
    arrays. ``train_acc`` (models,), ``correct`` (models, samples) bool."""
    correct = np.asarray(correct, dtype=np.float64)
    a = np.asarray(halves, dtype=np.float64)
    acc_a = (a @ correct.T) / a.sum(axis=1, keepdims=True)
    acc_b = ((1.0 - a) @ correct.T) / (1.0 - a).sum(axis=1, keepdims=True)
    return train_acc[None, :] - acc_a, train_acc[None, :] - acc_b


def agreement_rows(arrays: TaskArrays, predictions: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Per row r, the CMI (minimum over conditioning pairs, NaN pairs left out) and tau of ``predictions[r]``
    as a measure of the gaps ``targets[r]``; ``"conditions"``: per pair ("h1|h2"), the (rows,) scores."""
    batch = cmi_batch(predictions, targets, arrays)
    return {"cmi": batch.cmi, "kendall_tau": kendall_tau_batch(predictions, targets),
            "conditions": {"|".join(c): v for c, v in batch.conditions.items()}}


def agreement(arrays: TaskArrays, predictions: np.ndarray, targets: np.ndarray) -> dict:
    """Mean (and standard deviation) over rows of ``agreement_rows``; per conditioning pair, the mean score."""
    return _summary(agreement_rows(arrays, predictions, targets))


def _summary(rows: dict) -> dict:
    cmis, taus = rows["cmi"], rows["kendall_tau"]
    return {
        "cmi": _nanmean(cmis), "cmi_sd": _nansd(cmis),
        "kendall_tau": _nanmean(taus), "kendall_tau_sd": _nansd(taus),
        "conditions": {k: _nanmean(v) for k, v in rows["conditions"].items()},
    }


def gap_noise_ceiling(arrays: TaskArrays, train_acc: np.ndarray, correct: np.ndarray, n_splits: int = DEFAULT_SPLITS,
                      seed: int = 0, halves: np.ndarray | None = None) -> dict:
    """The split-half noise ceiling (module docstring) from each model's train accuracy and test-set
    correctness; ``halves`` (splits, samples) bool overrides the ``n_splits`` random splits."""
    if halves is None:
        halves = random_halves(correct.shape[1], n_splits, seed)
    gaps_a, gaps_b = split_half_gaps(np.asarray(train_acc, dtype=np.float64), correct, halves)
    out = agreement(arrays, gaps_a, gaps_b)
    out.update({"row": SPLIT_HALF_ROW, "splits": int(len(halves)), "test_samples": int(correct.shape[1]),
                "seed": seed, "method": "CMI and tau of the gap on one random half of the test set as a measure "
                "of the gap on the other half; mean over splits"})
    return out


def replicate_ceiling(arrays: TaskArrays, replicate_gaps: np.ndarray) -> dict:
    """One replicate's gaps as the measure of another's, mean over all ordered pairs of distinct replicates;
    ``replicate_gaps`` (replicates, models), models in ``arrays`` order. ``per_replicate[j]``: the mean over
    the other replicates predicting replicate j (their mean is the overall mean)."""
    k = len(replicate_gaps)
    if k < 2:
        raise ValueError("a replicate ceiling needs at least 2 replicates")
    pairs = [(i, j) for j in range(k) for i in range(k) if i != j]  # grouped by the predicted replicate j
    predictions, targets = replicate_gaps[[i for i, _ in pairs]], replicate_gaps[[j for _, j in pairs]]
    rows = agreement_rows(arrays, predictions, targets)
    out = _summary(rows)
    out["per_replicate"] = [{key: _nanmean(rows[key][j * (k - 1):(j + 1) * (k - 1)]) for key in ("cmi", "kendall_tau")}
                            for j in range(k)]
    out.update({"row": REPLICATE_ROW, "replicates": k, "pairs": len(pairs),
                "method": "CMI and tau of one training seed's gaps as a measure of another's; mean over ordered "
                "pairs of replicates"})
    return out


def checked_correctness(task: Task, split: str = "test") -> np.ndarray | None:
    """Per-sample correctness (models, samples) of a task's models on ``split`` (in-house zoos), else None;
    the files must agree with the recorded accuracies (one clear error naming the file otherwise)."""
    correct = read_correctness(task.path, task.model_ids, split)
    if correct is None:
        return None
    accuracy = task.test_acc if split == "test" else task.train_acc
    recorded = np.array([accuracy(m) for m in task.model_ids])
    off = np.flatnonzero(np.abs(correct.mean(axis=1) - recorded) > 1e-9)
    if len(off):
        model_id = task.model_ids[off[0]]
        raise TaskFormatError(f"{task.model_dir(model_id) / CORRECTNESS_FILES[split]}: accuracy "
                              f"{correct[off[0]].mean():.6f} differs from the recorded {split} accuracy "
                              f"{recorded[off[0]]:.6f}")
    return correct


def task_noise_ceiling(task: Task, n_splits: int = DEFAULT_SPLITS, seed: int = 0) -> dict | None:
    """The split-half ceiling of a task whose models carry per-sample test correctness (in-house zoos),
    else None. The files must agree with the recorded test accuracies."""
    correct = checked_correctness(task, "test")
    if correct is None:
        return None
    train_acc = np.array([task.train_acc(m) for m in task.model_ids])
    return gap_noise_ceiling(TaskArrays.from_task(task), train_acc, correct, n_splits, seed)


def replicate_set_ceiling(tasks: list[Task]) -> dict:
    """``replicate_ceiling`` of the member tasks of a replicate set (same models and grid in each)."""
    first = tasks[0]
    for task in tasks[1:]:
        if task.model_ids != first.model_ids or any(task.hparams(m) != first.hparams(m) for m in first.model_ids):
            raise TaskFormatError(f"{task.path}: not a replicate of {first.path} (other models or hyperparameters)")
    return replicate_ceiling(TaskArrays.from_task(first), np.stack([t.gaps() for t in tasks]))


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _nansd(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.std(ddof=1)) if len(finite) > 1 else math.nan


def _main(argv: list[str] | None = None) -> None:
    """``python -m benchmark.noise_ceiling [TASK...]``: each task's split-half ceiling and the time it took
    (default: the pinned embedded zoos)."""
    import sys
    import time

    from task_loaders import load_task
    from task_loaders.pinned import pinned_zoo
    from task_loaders.zoo import DEFAULT_ZOOS

    paths = (sys.argv[1:] if argv is None else argv) or [pinned_zoo(name) for name in DEFAULT_ZOOS]
    for path in paths:
        task = load_task(path)
        start = time.perf_counter()
        c = task_noise_ceiling(task)
        seconds = time.perf_counter() - start
        if c is None:
            print(f"{task.name}: no per-sample correctness (not an in-house zoo)")
        else:
            print(f"{task.name}: gap noise ceiling CMI x100 {c['cmi'] * 100:.2f} (sd {c['cmi_sd'] * 100:.2f}), tau "
                  f"{c['kendall_tau']:.2f}, {c['splits']} halvings of {c['test_samples']} test samples of "
                  f"{len(task.model_ids)} models in {seconds:.2f} s")


if __name__ == "__main__":
    _main()
