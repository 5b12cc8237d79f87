"""Synthetic model zoos whose true generalization gaps are known: the ground truth that the noise
ceiling (``ceiling``), intervals and power analyses are checked against.

A zoo is a complete factorial grid of hyperparameters (``Design.sizes``: 2^5 = 32 models like the
shipped digits zoos, 3x3x3x2x2 = 108 or 3^5 = 243 like PGDL tasks). Its TRUE gaps are log-normal:
log gap = hyperparameter main effects + one two-way interaction + model-level noise (share
``Design.model_share`` of the log-gap variance; 0.35, about what the digits zoos leave to
unexplained model-level variation: main effects explain 64% and 72% of their log gaps), standardized
to the spread's geometric mean and log sd (``SPREADS``: "digits" like digits-bn/-nobn, gaps ~0.008 to
~0.1, sd ~0.016; "pgdl" wider, gaps ~0.05 to ~0.4, sd ~0.06). Train accuracy is fixed (the gap is
defined on the model's own train set); the true test accuracy is train accuracy minus the true gap.

Per-sample correctness of a test set (``Zoo.draw_correctness``) comes from a population:
``LatentPopulation``, a shared per-sample difficulty (one normal latent per sample, the same for every
model; tetrachoric correlation ``rho``, default 0.72: the mean of the pairwise tetrachoric
correlations of the digits zoos' test errors, 0.76 and 0.69, whose phi correlations are 0.37 and
0.33), or ``EmpiricalPopulation``, a real zoo's correctness matrix resampled with replacement (the
"nested" mode: the truth is the real zoo's gaps on its whole test set). The measured gap of a model
is its train accuracy minus its accuracy on the drawn test set.

``true_ceiling`` is the quantity the ceiling estimators estimate, by Monte Carlo over test sets: the
expected CMI (and Kendall tau) of the true gaps as a measure of the gaps measured on a test set of
size n.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from ..noise_ceiling import agreement_rows
from .scoring import TaskArrays

SPREADS = {
    # geometric mean gap, sd of log gap, share of models with a train error, the largest train error
    "digits": {"gap_geomean": 0.03, "log_sd": 0.5, "train_error_share": 0.25, "train_error_max": 0.05},
    "pgdl": {"gap_geomean": 0.15, "log_sd": 0.4, "train_error_share": 0.5, "train_error_max": 0.02},
}
DIGITS_RHO = 0.72


@dataclass(frozen=True)
class Design:
    """A synthetic zoo design: grid shape, test-set size, gap spread and error correlation."""

    sizes: tuple[int, ...]
    n_test: int
    spread: str = "digits"
    rho: float = DIGITS_RHO
    model_share: float = 0.35

    @property
    def label(self) -> str:
        return f"{math.prod(self.sizes)} models ({'x'.join(map(str, self.sizes))}), n={self.n_test}, {self.spread}"


class LatentPopulation:
    """Test samples with a shared difficulty: model m is wrong on sample i when
    sqrt(rho) z_i + sqrt(1 - rho) e_mi < Phi^-1(error_m), z_i and e_mi standard normal, z shared."""

    def __init__(self, error_rates: np.ndarray, rho: float):
        self.error_rates = np.asarray(error_rates, dtype=np.float64)
        if not (0 <= rho < 1):
            raise ValueError(f"latent correlation must be in [0, 1), not {rho}")
        if np.any((self.error_rates <= 0) | (self.error_rates >= 1)):
            raise ValueError("error rates must lie strictly between 0 and 1")
        self.rho = float(rho)
        self.thresholds = norm.ppf(self.error_rates)

    @property
    def accuracy(self) -> np.ndarray:
        return 1.0 - self.error_rates

    def draw_correctness(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal(n, dtype=np.float32)
        latent = rng.standard_normal((len(self.error_rates), n), dtype=np.float32)
        latent *= np.float32(math.sqrt(1 - self.rho))
        latent += np.float32(math.sqrt(self.rho)) * z[None, :]
        return latent >= self.thresholds[:, None].astype(np.float32)

    def error_covariance(self) -> np.ndarray:
        """The per-sample covariance of correctness between models (M, M): P(both wrong) - e_i e_j,
        from the bivariate normal (scipy); the variance e(1 - e) on the diagonal."""
        return latent_error_covariance(self.error_rates, self.rho)


def latent_error_covariance(error_rates: np.ndarray, rho: float) -> np.ndarray:
    """Per-sample covariance of two models' correctness under the shared-difficulty latent model."""
    from scipy.stats import multivariate_normal

    e = np.asarray(error_rates, dtype=np.float64)
    t = norm.ppf(e)
    m = len(e)
    cov = np.diag(e * (1 - e))
    i, j = np.triu_indices(m, k=1)
    both = multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf(np.column_stack([t[i], t[j]]))
    cov[i, j] = cov[j, i] = np.atleast_1d(both) - e[i] * e[j]
    return cov


class EmpiricalPopulation:
    """A real zoo's per-sample correctness (models, N) as the population: test sets are drawn from its
    columns with replacement, the same columns for every model."""

    def __init__(self, correct: np.ndarray):
        self.correct = np.asarray(correct, dtype=bool)

    @property
    def accuracy(self) -> np.ndarray:
        return self.correct.mean(axis=1)

    def draw_correctness(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.correct[:, rng.integers(0, self.correct.shape[1], size=n)]


@dataclass
class Zoo:
    """Models on a grid with known true gaps and a population of test samples to measure them on."""

    names: list[str]
    codes: dict[str, np.ndarray]
    sizes: dict[str, int]
    train_acc: np.ndarray
    population: LatentPopulation | EmpiricalPopulation
    n_test: int
    _truth: TaskArrays | None = field(default=None, repr=False)

    @property
    def true_gaps(self) -> np.ndarray:
        return self.train_acc - self.population.accuracy

    def arrays(self, gaps: np.ndarray) -> TaskArrays:
        """TaskArrays of this grid with the given gaps (models keyed model_0, model_1, ...)."""
        return TaskArrays(keys=[f"model_{i}" for i in range(len(gaps))], gaps=np.asarray(gaps, dtype=np.float64),
                          names=list(self.names), codes=self.codes, sizes=self.sizes)

    @property
    def truth(self) -> TaskArrays:
        if self._truth is None:
            self._truth = self.arrays(self.true_gaps)
        return self._truth

    def draw_correctness(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Per-sample test correctness (models, n) bool of one test set of size n (default ``n_test``)."""
        return self.population.draw_correctness(self.n_test if n is None else n, rng)

    def measure(self, correct: np.ndarray) -> TaskArrays:
        """TaskArrays whose gaps are those measured on ``correct``: train accuracy minus test accuracy."""
        return self.arrays(self.train_acc - np.asarray(correct).mean(axis=1))


def grid_codes(sizes: tuple[int, ...]) -> tuple[list[str], dict[str, np.ndarray], dict[str, int]]:
    """Names h0, h1, ..., per-model value codes (complete grid, last name fastest) and sizes."""
    names = [f"h{k}" for k in range(len(sizes))]
    combos = np.array(list(itertools.product(*(range(s) for s in sizes))), dtype=np.int64)
    return names, {n: combos[:, k] for k, n in enumerate(names)}, dict(zip(names, sizes))


def true_log_gaps(design: Design, codes: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Standardized log gaps: main effects with random weights, one interaction, model-level noise."""
    names = list(codes)
    m = len(codes[names[0]])
    effects = np.zeros(m)
    for name in names:
        levels = rng.standard_normal(int(codes[name].max()) + 1)
        effects += rng.uniform(0.3, 1.0) * levels[codes[name]]
    if len(names) >= 2:
        a, b = names[:2]
        table = rng.standard_normal((int(codes[a].max()) + 1, int(codes[b].max()) + 1))
        effects += 0.5 * table[codes[a], codes[b]]
    effects = _standardize(effects)
    noise = _standardize(rng.standard_normal(m))
    return _standardize(math.sqrt(1 - design.model_share) * effects + math.sqrt(design.model_share) * noise)


def synthetic_zoo(design: Design, rng: np.random.Generator) -> Zoo:
    """A zoo of ``design``: true gaps (module docstring), fixed train accuracies, a latent population."""
    spread = SPREADS[design.spread]
    names, codes, sizes = grid_codes(design.sizes)
    m = len(codes[names[0]])
    gaps = spread["gap_geomean"] * np.exp(spread["log_sd"] * true_log_gaps(design, codes, rng))
    train_error = np.where(rng.random(m) < spread["train_error_share"], rng.uniform(0, spread["train_error_max"], m), 0)
    train_acc = 1.0 - train_error
    error = np.clip(train_error + gaps, 1e-4, 0.999)
    return Zoo(names, codes, sizes, train_acc, LatentPopulation(error, design.rho), design.n_test)


def nested_zoo(arrays: TaskArrays, train_acc: np.ndarray, correct: np.ndarray, n_test: int | None = None) -> Zoo:
    """A real zoo as the population (nested mode): truth = its gaps on all its test samples, test sets
    of ``n_test`` (default: as many as it has) drawn from its samples with replacement."""
    correct = np.asarray(correct, dtype=bool)
    return Zoo(list(arrays.names), arrays.codes, arrays.sizes, np.asarray(train_acc, dtype=np.float64),
               EmpiricalPopulation(correct), correct.shape[1] if n_test is None else n_test)


@dataclass
class SimulatedTask:
    """One measured zoo: what a benchmark sees (``measured``, ``correct``, ``train_acc``) and the truth."""

    zoo: Zoo
    correct: np.ndarray  # (models, n) bool
    measured: TaskArrays  # gaps measured on ``correct``
    truth: TaskArrays  # true gaps

    @property
    def train_acc(self) -> np.ndarray:
        return self.zoo.train_acc


def simulate_task(design: Design, seed: int | np.random.Generator = 0) -> SimulatedTask:
    """A synthetic zoo of ``design`` and one test set measured on it."""
    rng = np.random.default_rng(seed)
    zoo = synthetic_zoo(design, rng)
    correct = zoo.draw_correctness(rng)
    return SimulatedTask(zoo, correct, zoo.measure(correct), zoo.truth)


def true_ceiling(zoo: Zoo, repeats: int = 200, rng: np.random.Generator | int = 0, n: int | None = None,
                 chunk: int = 50) -> dict:
    """E over test sets of size n of the CMI and tau of the true gaps as a measure of the measured gaps,
    by ``repeats`` Monte Carlo draws; ``cmi_se``/``kendall_tau_se``: the Monte Carlo standard errors."""
    rng = np.random.default_rng(rng)
    truth = zoo.truth
    cmis, taus = [], []
    for start in range(0, repeats, chunk):
        rows = min(chunk, repeats - start)
        measured = np.stack([zoo.train_acc - zoo.draw_correctness(rng, n).mean(axis=1) for _ in range(rows)])
        scores = agreement_rows(truth, np.repeat(truth.gaps[None, :], rows, axis=0), measured)
        cmis.append(scores["cmi"])
        taus.append(scores["kendall_tau"])
    cmi, tau = np.concatenate(cmis), np.concatenate(taus)
    return {"cmi": float(np.nanmean(cmi)), "cmi_se": float(np.nanstd(cmi, ddof=1) / math.sqrt(len(cmi))),
            "kendall_tau": float(np.nanmean(tau)), "kendall_tau_se": float(np.nanstd(tau, ddof=1) / math.sqrt(len(tau))),
            "repeats": repeats}


def _standardize(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)
