"""Synthetic scoring inputs shaped like real PGDL tasks (no files needed)."""

from __future__ import annotations

import itertools

import numpy as np

from benchmark.scores.scoring import TaskArrays


def synthetic_task(sizes: dict[str, int], seed: int = 0, tie_levels: int | None = None) -> tuple[TaskArrays, dict]:
    """A complete grid over ``sizes`` with random gaps; returns (TaskArrays, reference-loop models).

    ``tie_levels`` rounds gaps onto that many levels, so equal gaps (ties) occur as in real tasks.
    """
    rng = np.random.default_rng(seed)
    names = list(sizes)
    cells = list(itertools.product(*(range(sizes[n]) for n in names)))
    gaps = rng.random(len(cells))
    if tie_levels:
        gaps = np.round(gaps * (tie_levels - 1)) / (tie_levels - 1)
    keys = [f"model_{i}" for i in range(len(cells))]
    codes = {n: np.array([c[k] for c in cells], dtype=np.int64) for k, n in enumerate(names)}
    arrays = TaskArrays(keys=keys, gaps=gaps, names=names, codes=codes, sizes=dict(sizes))
    models = {
        key: {"hparams": {n: int(codes[n][i]) for n in names}, "gap": float(gaps[i])} for i, key in enumerate(keys)
    }
    return arrays, models


# PGDL task 1's grid: 2 x 2 x 2 x 2 x 2 x 3 = 96 models, 6 hyperparameters.
TASK1_GRID = {"width": 2, "dropout": 2, "depth": 2, "dense": 2, "weight_decay": 2, "batch_size": 3}


def correlated_correctness(test_error: np.ndarray, n_samples: int, latent_correlation: float,
                           rng: np.random.Generator) -> np.ndarray:
    """Per-sample correctness (models, samples) bool of models with true error rates ``test_error`` on a
    test set of ``n_samples`` drawn from the population, errors correlated across models as on a shared
    test set: sample s has a difficulty z_s ~ N(0, 1), and model m errs on it when
    sqrt(rho) z_s + sqrt(1 - rho) e_ms > Phi^-1(1 - error_m) (e_ms ~ N(0, 1) independent), so that each
    model errs with probability exactly error_m and two models' errors correlate through z."""
    from scipy.stats import norm

    z = rng.standard_normal(n_samples)
    e = rng.standard_normal((len(test_error), n_samples))
    latent = np.sqrt(latent_correlation) * z[None, :] + np.sqrt(1 - latent_correlation) * e
    return latent <= norm.ppf(1 - np.asarray(test_error, dtype=np.float64))[:, None]
