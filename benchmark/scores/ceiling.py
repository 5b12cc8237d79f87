"""The gap noise ceiling at the full test size: the best CMI (and Kendall tau) any measure could reach
given how the gaps are measured.

Definition: the expected CMI of the TRUE gaps (what a perfect measure would output) as a measure of the
MEASURED gaps, train accuracy minus accuracy on a test set of the task's full size n.

Estimators here (all from the models' per-sample test correctness, ``correct`` (models, n) bool):

* ``joint_bootstrap``: resample the n test samples with replacement, the SAME resampled samples for
  every model (all models share one test set; their per-sample errors correlate, phi 0.33-0.37 on the
  digits zoos), and score the observed gaps as a measure of the resampled gaps. Biased up: the observed
  gaps, standing in for the truth, carry their own measurement noise and so spread wider than the truth.
* ``shrunk_bootstrap`` (the default, ``ceiling``): the same resamples, but the truth is the observed
  gaps shrunk toward their mean by the square root of their estimated reliability (signal variance over
  observed variance, the noise variance from the per-sample covariance of correctness: its spread then
  matches the truth's), and a resample's measured gaps are that truth plus the resample's deviation
  from the observed gaps.
* ``double_bootstrap``: the joint bootstrap minus its bootstrap estimate of its own bias (the joint
  bootstrap applied to each resample, one second-level resample each).
* ``binomial_bootstrap``: each model's test accuracy redrawn from its own binomial, independently of
  the other models (ignores the shared test set).
* ``latent_ceiling``: the fallback for a task with recorded accuracies and a test-set size but no
  per-sample correctness (official PGDL folders): the noise covariance of the models' accuracies from a
  shared-difficulty latent model (``simulation.LatentPopulation``) with the tetrachoric correlation of
  the in-house digits zoos, Gaussian noise of that covariance, and the same shrunk truth.
* ``benchmark.noise_ceiling.gap_noise_ceiling`` (split-half, for comparison): half-size noise on both
  sides, so it estimates roughly the ceiling of a test set of n/4 and lands far below the truth.

Bias and coverage, measured by ``python -m scripts.simulate_ceiling`` on synthetic zoos whose true
gaps are known (docs/ceiling.md has the tables and the commands). In short, on the designs run so far
(32 and 108 models; nested digits zoos) the shrunk bootstrap is within about 1.5 CMI points (x100) of the
true ceiling, the joint bootstrap 0-5 points high, split-half 12-23 points low. The interval's coverage
was 75-92% in a 12-zoo smoke run (probably somewhat narrow; not settled).

The interval (``ceiling(..., interval=True)``) is an outer bootstrap of the whole estimator: for each
outer resample of the test samples, the shrunk bootstrap with ``inner`` resamples of that resample;
its standard deviation (less the inner Monte Carlo variance) times 1.96 either side of the estimate.

Train-set noise: the gap is train accuracy on the model's own train set minus test accuracy; the
train set is not a sample standing in for anything, so train accuracy carries no measurement noise
and the default does not resample it. ``train_correct`` resamples the train samples too (jointly across
models, independently of the test samples) for a user who wants the train accuracy treated as an
estimate of accuracy on the train distribution; on the pinned zoos it moves the ceiling by -0.4
(digits-bn) and -5.0 (digits-nobn, a third of whose models are below 100% train accuracy) CMI points.
"""

from __future__ import annotations

import math

import numpy as np

from ..noise_ceiling import agreement_rows, gap_noise_ceiling
from .scoring import TaskArrays

DEFAULT_RESAMPLES = 1000
ROW_BUDGET = 4_000_000  # rows x models^2 per scoring chunk (memory of the batched CMI kernel)
PGDL_RHO = 0.72  # tetrachoric correlation of test errors between models: digits-bn 0.76, digits-nobn 0.69


def joint_bootstrap_counts(n_samples: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n_samples) int: how often each test sample is drawn in each resample of n_samples
    drawn with replacement. One row serves every model (the shared test set)."""
    return index_counts(rng.integers(0, n_samples, size=(resamples, n_samples)), n_samples)


def index_counts(indices: np.ndarray, n_samples: int) -> np.ndarray:
    """(rows, n_samples) int: per row of drawn sample ``indices``, how often each sample was drawn."""
    rows = len(indices)
    flat = (np.arange(rows)[:, None] * n_samples + indices).ravel()
    return np.bincount(flat, minlength=rows * n_samples).reshape(rows, n_samples)


def resampled_accuracies(correct: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(resamples, models): each model's accuracy on each resample (``counts`` rows) of its test set."""
    c = np.asarray(correct, dtype=np.float64)
    return (counts @ c.T) / counts.sum(axis=1, keepdims=True)


def accuracy_noise_covariance(correct: np.ndarray) -> np.ndarray:
    """(models, models): the sampling covariance of the models' test accuracies measured on n shared
    samples, the per-sample covariance of correctness (unbiased, ddof 1) divided by n."""
    c = np.asarray(correct, dtype=np.float64)
    return np.atleast_2d(np.cov(c, ddof=1)) / c.shape[1]


def reliability(gaps: np.ndarray, noise_cov: np.ndarray) -> float:
    """The share of the observed gaps' spread around their mean that is true spread:
    1 - tr(H S H) / |H g|^2 (H the centring matrix, S the gaps' noise covariance), clipped to [0, 1]."""
    g = np.asarray(gaps, dtype=np.float64)
    spread = float(((g - g.mean()) ** 2).sum())
    if spread == 0:
        return 0.0
    noise = float(np.trace(noise_cov) - noise_cov.sum() / len(g))
    return min(1.0, max(0.0, 1.0 - noise / spread))


def shrink_gaps(gaps: np.ndarray, noise_cov: np.ndarray, power: float = 0.5) -> tuple[np.ndarray, float]:
    """The observed gaps shrunk toward their mean by reliability ** power (0.5: the spread of the
    result matches the estimated true spread; 1: the posterior mean under a normal prior), and the
    reliability."""
    g = np.asarray(gaps, dtype=np.float64)
    r = reliability(g, noise_cov)
    return g.mean() + r ** power * (g - g.mean()), r


def score_rows(arrays: TaskArrays, truth: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row r, the CMI and tau of ``truth`` (models,) or ``truth[r]`` as a measure of ``measured[r]``,
    in chunks that keep the batched kernel's memory bounded."""
    rows, m = measured.shape
    truth = np.broadcast_to(truth, measured.shape)
    step = max(1, ROW_BUDGET // (m * m))
    cmis, taus = [], []
    for start in range(0, rows, step):
        out = agreement_rows(arrays, np.ascontiguousarray(truth[start:start + step]), measured[start:start + step])
        cmis.append(out["cmi"])
        taus.append(out["kendall_tau"])
    return np.concatenate(cmis), np.concatenate(taus)


def _summary(method: str, cmis: np.ndarray, taus: np.ndarray, **extra) -> dict:
    return {"method": method, "cmi": _nanmean(cmis), "kendall_tau": _nanmean(taus),
            "cmi_mc_se": _nanse(cmis), "kendall_tau_mc_se": _nanse(taus), "resamples": int(len(cmis)), **extra}


def _gap_resamples(train_acc, correct, resamples, rng, train_correct=None):
    """Observed gaps and (resamples, models) gaps of joint resamples of the test (and train) samples."""
    train_acc = np.asarray(train_acc, dtype=np.float64)
    observed = train_acc - np.asarray(correct).mean(axis=1)
    test = resampled_accuracies(correct, joint_bootstrap_counts(correct.shape[1], resamples, rng))
    train = train_acc[None, :]
    if train_correct is not None:
        train = resampled_accuracies(train_correct, joint_bootstrap_counts(train_correct.shape[1], resamples, rng))
    return observed, train - test


def joint_bootstrap(arrays: TaskArrays, train_acc, correct, resamples: int = DEFAULT_RESAMPLES,
                    seed: int | np.random.Generator = 0, train_correct=None) -> dict:
    """Observed gaps as a measure of jointly resampled gaps (biased up; module docstring)."""
    rng = np.random.default_rng(seed)
    observed, boot = _gap_resamples(train_acc, correct, resamples, rng, train_correct)
    return _summary("joint bootstrap", *score_rows(arrays, observed, boot))


def shrunk_bootstrap(arrays: TaskArrays, train_acc, correct, resamples: int = DEFAULT_RESAMPLES,
                     seed: int | np.random.Generator = 0, train_correct=None, power: float = 0.5) -> dict:
    """Reliability-shrunk truth as a measure of itself plus jointly resampled noise (module docstring)."""
    rng = np.random.default_rng(seed)
    observed, boot = _gap_resamples(train_acc, correct, resamples, rng, train_correct)
    noise_cov = accuracy_noise_covariance(correct)
    if train_correct is not None:
        noise_cov = noise_cov + accuracy_noise_covariance(train_correct)
    truth, r = shrink_gaps(observed, noise_cov, power)
    return _summary("shrunk joint bootstrap", *score_rows(arrays, truth, truth + (boot - observed)), reliability=r)


def double_bootstrap(arrays: TaskArrays, train_acc, correct, resamples: int = DEFAULT_RESAMPLES,
                     seed: int | np.random.Generator = 0) -> dict:
    """2 x joint bootstrap - the joint bootstrap of its resamples (one second-level resample each)."""
    rng = np.random.default_rng(seed)
    correct = np.asarray(correct, dtype=bool)
    train_acc = np.asarray(train_acc, dtype=np.float64)
    n = correct.shape[1]
    observed = train_acc - correct.mean(axis=1)
    first = rng.integers(0, n, size=(resamples, n))
    second = np.take_along_axis(first, rng.integers(0, n, size=(resamples, n)), axis=1)
    level1 = train_acc - resampled_accuracies(correct, index_counts(first, n))
    level2 = train_acc - resampled_accuracies(correct, index_counts(second, n))
    c1, t1 = score_rows(arrays, observed, level1)
    c2, t2 = score_rows(arrays, level1, level2)
    return {"method": "double bootstrap", "cmi": 2 * _nanmean(c1) - _nanmean(c2),
            "kendall_tau": 2 * _nanmean(t1) - _nanmean(t2), "resamples": int(resamples)}


def binomial_bootstrap(arrays: TaskArrays, train_acc, correct, resamples: int = DEFAULT_RESAMPLES,
                       seed: int | np.random.Generator = 0) -> dict:
    """Observed gaps as a measure of gaps whose test accuracies are redrawn binomially, model by model."""
    rng = np.random.default_rng(seed)
    train_acc = np.asarray(train_acc, dtype=np.float64)
    n = correct.shape[1]
    acc = np.asarray(correct).mean(axis=1)
    boot = train_acc - rng.binomial(n, acc, size=(resamples, len(acc))) / n
    return _summary("independent binomial", *score_rows(arrays, train_acc - acc, boot))


def latent_ceiling(arrays: TaskArrays, train_acc, test_acc, n_test: int, resamples: int = DEFAULT_RESAMPLES,
                   seed: int | np.random.Generator = 0, rho: float = PGDL_RHO) -> dict:
    """The fallback without per-sample correctness: recorded accuracies and the test-set size only. The
    noise covariance of the accuracies is the latent model's (``simulation.latent_error_covariance`` at
    the recorded error rates, over n_test); truth and resamples as ``shrunk_bootstrap`` with Gaussian
    noise of that covariance."""
    from .simulation import latent_error_covariance

    rng = np.random.default_rng(seed)
    train_acc, test_acc = np.asarray(train_acc, dtype=np.float64), np.asarray(test_acc, dtype=np.float64)
    error = np.clip(1.0 - test_acc, 0.5 / n_test, 1 - 0.5 / n_test)
    noise_cov = latent_error_covariance(error, rho) / n_test
    truth, r = shrink_gaps(train_acc - test_acc, noise_cov)
    factor = np.linalg.cholesky(noise_cov + 1e-15 * np.eye(len(error)))
    noise = rng.standard_normal((resamples, len(error))) @ factor.T
    return _summary("latent-model Gaussian", *score_rows(arrays, truth, truth + noise), reliability=r, rho=rho,
                    n_test=int(n_test))


def ceiling(arrays: TaskArrays, train_acc, correct, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
            interval: bool = False, outer: int = 200, inner: int = 25, train_correct=None) -> dict:
    """The default ceiling estimate (``shrunk_bootstrap``) of a task's gaps at its full test size, from each
    model's train accuracy and per-sample test correctness; with ``interval``, a 95% interval
    (``cmi_interval``, ``kendall_tau_interval``) from ``outer`` outer resamples of ``inner`` inner ones."""
    correct = np.asarray(correct, dtype=bool)
    out = shrunk_bootstrap(arrays, train_acc, correct, resamples, seed, train_correct)
    out.update({"test_samples": int(correct.shape[1]), "seed": seed})
    if interval:
        out.update(outer_bootstrap_interval(arrays, train_acc, correct, out, outer, inner, seed + 1, train_correct))
    return out


def outer_bootstrap_interval(arrays: TaskArrays, train_acc, correct, estimate: dict, outer: int = 200, inner: int = 25,
                             seed: int = 1, train_correct=None) -> dict:
    """estimate +- 1.96 sd of the shrunk bootstrap over outer resamples of the test (and train) samples,
    the sd corrected for the inner Monte Carlo variance."""
    rng = np.random.default_rng(seed)
    correct = np.asarray(correct, dtype=bool)
    n = correct.shape[1]
    train_acc = np.asarray(train_acc, dtype=np.float64)
    truths, measured = [], []
    for _ in range(outer):
        sample = correct[:, rng.integers(0, n, size=n)]
        train_sample, train_b = None, train_acc
        if train_correct is not None:
            train_sample = train_correct[:, rng.integers(0, train_correct.shape[1], size=train_correct.shape[1])]
            train_b = train_sample.mean(axis=1)
        observed, boot = _gap_resamples(train_b, sample, inner, rng, train_sample)
        noise_cov = accuracy_noise_covariance(sample)
        if train_sample is not None:
            noise_cov = noise_cov + accuracy_noise_covariance(train_sample)
        truth, _ = shrink_gaps(observed, noise_cov)
        truths.append(np.repeat(truth[None, :], inner, axis=0))
        measured.append(truth + (boot - observed))
    cmis, taus = score_rows(arrays, np.concatenate(truths), np.concatenate(measured))
    out = {"outer": outer, "inner": inner}
    for key, rows in (("cmi", cmis), ("kendall_tau", taus)):
        rows = rows.reshape(outer, inner)
        with np.errstate(invalid="ignore"):
            means = np.nanmean(rows, axis=1)
            within = np.nanmean(np.nanvar(rows, axis=1, ddof=1)) / inner
        sd = math.sqrt(max(0.0, float(np.nanvar(means, ddof=1)) - within))
        out[f"{key}_sd"] = sd
        out[f"{key}_interval"] = (estimate[key] - 1.96 * sd, estimate[key] + 1.96 * sd)
    return out


def split_half(arrays: TaskArrays, train_acc, correct, resamples: int = 200, seed: int = 0) -> dict:
    """``benchmark.noise_ceiling.gap_noise_ceiling`` under this module's result keys (for comparison)."""
    out = gap_noise_ceiling(arrays, np.asarray(train_acc, dtype=np.float64), np.asarray(correct), resamples, seed)
    return {"method": "split-half", "cmi": out["cmi"], "kendall_tau": out["kendall_tau"], "resamples": out["splits"]}


ESTIMATORS = {
    "split-half": split_half,
    "joint bootstrap": joint_bootstrap,
    "shrunk bootstrap": shrunk_bootstrap,
    "double bootstrap": double_bootstrap,
    "independent binomial": binomial_bootstrap,
}


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _nanse(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.std(ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else math.nan
