"""Joint bootstrap resamples of a zoo's generalization gaps, from per-sample correctness.

Every model of a task is tested on the same test set, so the models' per-sample errors are correlated
(about 0.35 in the shipped digits zoos) and a resample must be JOINT: resample b draws n test indices
with replacement once, and every model's test accuracy on resample b is its mean correctness over those
same indices. As multiplicities w_b (n,) (multinomial(n, 1/n)), all resamples at once are one product:

    test_acc (B, M) = W (B, n) @ correct^T (n, M) / n,   gaps = train_acc - test_acc.

Optionally the training samples on which train accuracy was measured are resampled the same way (jointly
too: one draw of train indices per resample, shared by all models).

The generator is seeded from the task's identity (``task_seed``: a hash of its fingerprint or name), not
from a measure: every measure of a task is scored against the very same resamples (common random
numbers), so comparisons between measures are paired on them; different tasks get independent streams.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

RESAMPLES = 1000


def task_seed(*identity: str) -> int:
    """A 64-bit seed from a task's identity (fingerprint, or name): the same task, the same resamples."""
    digest = hashlib.sha256("\0".join(("gap-resamples",) + tuple(map(str, identity))).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def multiplicities(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) counts of a bootstrap resample of n samples (each row sums to n): n indices drawn
    uniformly with replacement per resample, counted."""
    index = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(index.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float64)


@dataclass
class GapResamples:
    """``gaps`` (B, M): the gaps on B joint resamples; ``test_weights`` (B, n_test) the test-sample
    multiplicities that made them (shared by all models); ``train_weights`` likewise or None."""

    gaps: np.ndarray
    test_weights: np.ndarray
    train_weights: np.ndarray | None
    seed: int


def joint_gap_resamples(test_correct, train_acc=None, train_correct=None, resamples: int = RESAMPLES,
                        seed: int = 0, resample_train: bool = False) -> GapResamples:
    """Gaps of M models on ``resamples`` joint bootstrap resamples of the test set (and of the train set
    with ``resample_train``).

    ``test_correct`` (M, n_test) bool; train accuracy either given (``train_acc`` (M,)) or from
    ``train_correct`` (M, n_train) bool, which ``resample_train`` requires.
    """
    test_correct = np.asarray(test_correct, dtype=np.float64)
    if test_correct.ndim != 2 or test_correct.shape[1] < 1:
        raise ValueError(f"test correctness: expected (models, samples), got shape {test_correct.shape}")
    if train_acc is None and train_correct is None:
        raise ValueError("joint_gap_resamples needs train_acc or train_correct")
    if resample_train and train_correct is None:
        raise ValueError("resample_train needs the per-sample train correctness")
    rng = np.random.default_rng(seed)
    m, n = test_correct.shape
    test_w = multiplicities(n, resamples, rng)
    test_acc = test_w @ test_correct.T / n
    train_w = None
    if resample_train:
        train_correct = np.asarray(train_correct, dtype=np.float64)
        train_w = multiplicities(train_correct.shape[1], resamples, rng)
        train = train_w @ train_correct.T / train_correct.shape[1]
    else:
        train = (np.asarray(train_acc, dtype=np.float64) if train_acc is not None
                 else np.asarray(train_correct, dtype=np.float64).mean(axis=1))[None, :]
    if train.shape[-1] != m:
        raise ValueError(f"train accuracy of {train.shape[-1]} models, test correctness of {m}")
    return GapResamples(train - test_acc, test_w, train_w, seed)


def task_gap_resamples(task, resamples: int = RESAMPLES, resample_train: bool = False,
                       identity: str | None = None) -> GapResamples | None:
    """``joint_gap_resamples`` of a loaded task from its models' correctness files (in-house zoos), seeded
    by ``identity`` (default: the task's name); None when the task has no per-sample test correctness.

    The files must agree with the recorded accuracies (``noise_ceiling.checked_correctness``).
    """
    from ..noise_ceiling import checked_correctness

    test_correct = checked_correctness(task, "test")
    if test_correct is None:
        return None
    train_correct = checked_correctness(task, "train") if resample_train else None
    if resample_train and train_correct is None:
        raise ValueError(f"{task.path}: resample_train needs train_correct.npy in every model folder")
    train_acc = np.array([task.train_acc(m) for m in task.model_ids])
    return joint_gap_resamples(test_correct, train_acc, train_correct, resamples,
                               task_seed(identity or task.name), resample_train)
