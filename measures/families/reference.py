"""The reference family: Jiang et al.'s classic measures as the robust-evaluation reference code computes them.

Every measure that ``get_all_measures`` of github.com/nitarshan/robust-generalization-measures
(``data/generation/measures.py``, the code behind Dziugaite et al., NeurIPS 2020, "In search of
robust measures of generalization") returns, under the name ``ref_`` + its ``ComplexityType`` in lower
case (``ref_log_prod_of_spec`` is LOG_PROD_OF_SPEC, Jiang et al.'s eq. 32), with that code's
conventions. Where another family computes a measure of the same name in another convention (the
norms family's ``weight_norm``, ``distance_from_init`` and ``path_norm`` follow the PGDL starting
kit and count BatchNorm's moving statistics or leave biases out), both are registered, each under
its own name. ``docs/reference_measures.md`` compares every measure here with the reference code,
model by model.

Conventions of the reference code, kept here:

* Weights. Each BatchNorm directly after a Conv2D/Dense (with a linear activation) is folded into it
  (``measures.stats.batchnorm_folding.reparametrized``: W' = W * s, b' = (b - mean) * s + beta,
  s = gamma / sqrt(var + eps)), in the final and in the initial network. "The weights" are then the
  folded kernels only: biases and BatchNorm parameters are left out (the reference drops every
  parameter whose name contains 'bias' or 'bn'), as are BatchNorms that cannot be folded. d is the
  number of kernels, omega (``ref_params``) the number of their entries. Norms of a convolution
  reshape its kernel to (out, in * kh * kw); the ``_fft`` variants use the exact spectral norm of the
  circular convolution on the network's input size (the reference applies the input size to every
  convolution, whatever the size of its own input; a Dense kernel gives its matrix's spectral norm).
* Margin. gamma = |k-th smallest output margin|, k = floor(N / 10) (``kth_smallest_margin``), over the
  logits of the reparametrized network (each folded BatchNorm then computes x / sqrt(1 + eps), as in
  the reference) on ``view.sample(n)``: the whole training split when it has at most
  ``view.sample_size`` examples (the reference uses the whole split, which costs a pass over 50,000
  images on a PGDL task).
* Path norm: every parameter of the reparametrized network squared (biases and BatchNorm gamma/beta
  included), summed logits of an all-ones input (``squared_parameter_output``).
* PAC-Bayes: the sigma search of ``measures.stats.perturbation.reference_sigma`` on the
  reparametrized network (its module docstring: the noise's standard deviation is sigma^2, not sigma,
  and sigma is bisected on [0, 2] for at most 15 trials of 10 draws each, to an accuracy drop of
  0.1 +- 0.01), on ``view.sample(n)``, from the unperturbed accuracy of ``view.network`` on that
  sample; the magnitude-aware search with eps = 1e-3.
* Scale. The returned value is the reference's: a measure whose name starts with LOG_ returns
  0.5 * (value - log m), every other sqrt(value / m), with m the size of the training split (the
  reference's "adjust for dataset size"; both are increasing, so ranks are those of the raw value).
  A negative value under the square root (the reference returns NaN) fails with ``MeasureError``.

Signs: +1 for every measure (a larger value predicts a larger generalization gap), as in Jiang et al.
and Dziugaite et al., who treat all of them as complexities.

Cost: the quantities several measures share (folded weights, norms, the margin, each sigma) are
computed once per ``ModelView`` and kept with it. The two sigma searches dominate: at most
depth * draws passes over ``n`` samples each.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import torch

from ..citations import DZIUGAITE_2020, JIANG_2020, ROBUST_MEASURES_CODE
from ..model_view import ModelView
from ..registry import MeasureError, measure
from ..stats.batchnorm_folding import fold_batchnorm, reparametrized
from ..stats.margins import kth_smallest_margin, output_margin
from ..stats.norms import fft_spectral_norm, frobenius_norm, spectral_norm, squared_parameter_output
from ..stats.perturbation import pacbayes_bound, pacbayes_magnitude_bound, reference_sigma

MAGNITUDE_EPS = 1e-3  # the reference's mag_eps
SEED_OFFSET = 10348628753  # the reference seeds its generator with this + its seed argument

_SHARED: "weakref.WeakKeyDictionary[ModelView, dict]" = weakref.WeakKeyDictionary()


def _source(equation: str) -> str:
    return f"{JIANG_2020} ({equation}); {DZIUGAITE_2020}; {ROBUST_MEASURES_CODE}"


def _shared(view: ModelView, key: tuple, compute):
    """``compute()``, once per view and key (the quantities several measures of a model share)."""
    store = _SHARED.setdefault(view, {})
    if key not in store:
        store[key] = compute()
    return store[key]


# -- weights and their norms ------------------------------------------------------------------


def _kernels(view: ModelView, initial: bool = False) -> list[np.ndarray]:
    """The BatchNorm-folded kernels (torch layout, float64) of the final or the initial network."""
    def compute():
        if initial and view.initial_network is None:
            raise MeasureError(f"model {view.model_id}: this reference measure needs the initial weights "
                               f"(weights_init.hdf5)")
        network = view.initial_network if initial else view.network
        kernels = [w.numpy() for _, w, _ in fold_batchnorm(network)]
        if not kernels:
            raise MeasureError(f"model {view.model_id}: the network has no Conv2D or Dense layer")
        return kernels
    return _shared(view, ("kernels", initial), compute)


def _distances(view: ModelView) -> list[np.ndarray]:
    def compute():
        final, initial = _kernels(view), _kernels(view, initial=True)
        if [w.shape for w in final] != [w.shape for w in initial]:
            raise MeasureError(f"model {view.model_id}: the initial network's kernels have other shapes")
        return [w - w0 for w, w0 in zip(final, initial)]
    return _shared(view, ("distances",), compute)


def _vector(kernels: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([w.ravel() for w in kernels])


def _squared_norms(view: ModelView, which: str) -> np.ndarray:
    """Per kernel, squared: 'fro', 'spec', 'fft' of the weights; 'dist_fro', 'dist_spec', 'dist_fft' of W - W0."""
    def compute():
        kernels = _distances(view) if which.startswith("dist_") else _kernels(view)
        kind = which.removeprefix("dist_")
        if kind == "fft":
            shape = tuple(view.x_train.shape[2:]) if view.x_train.dim() == 4 else (1, 1)
            values = [fft_spectral_norm(w, shape) for w in kernels]
        else:
            norm = frobenius_norm if kind == "fro" else spectral_norm
            values = [norm(w.reshape(w.shape[0], -1)) for w in kernels]
        return np.square(np.array(values, dtype=np.float64))
    return _shared(view, ("norms", which), compute)


def _log_sum(view: ModelView, which: str) -> float:
    values = _squared_norms(view, which)
    if np.any(values <= 0):
        raise MeasureError(f"model {view.model_id}: a kernel is all zeros (log of a zero norm)")
    return float(np.sum(np.log(values)))


# -- margin -----------------------------------------------------------------------------------


def _reparametrized(view: ModelView) -> torch.nn.Module:
    return _shared(view, ("reparametrized",), lambda: reparametrized(view.network).eval())


def _batches(view: ModelView, network, x: torch.Tensor, batch_size: int | None) -> torch.Tensor:
    step = int(batch_size or view.batch_size)
    dtype = next(network.parameters()).dtype
    out = []
    with torch.no_grad():
        for start in range(0, len(x), step):
            xb = x[start : start + step].to(device=view.device, dtype=dtype)
            out.append(network(xb.contiguous(memory_format=torch.channels_last) if xb.dim() == 4 else xb))
    return torch.cat(out)


def _margin(view: ModelView, n: int | None) -> float:
    """gamma = |k-th smallest output margin| of the reparametrized network on ``view.sample(n)``."""
    x, y = view.sample(n)

    def compute():
        if len(y) == 0:
            raise MeasureError(f"model {view.model_id}: the margin needs training data, the sample is empty")
        with torch.inference_mode(False):
            logits = _batches(view, _reparametrized(view), x, None)
        gamma = abs(kth_smallest_margin(output_margin(logits, y), 10))
        if gamma == 0:
            raise MeasureError(f"model {view.model_id}: the 10th-percentile margin is 0 (the reference divides by it)")
        return gamma
    return _shared(view, ("margin", len(y)), compute)


def _log_margin2(view: ModelView, n: int | None) -> float:
    return 2.0 * math.log(_margin(view, n))


# -- PAC-Bayes --------------------------------------------------------------------------------


def _sigma(view: ModelView, magnitude: bool, n: int | None, draws: int, depth: int, seed: int | None,
           batch_size: int | None) -> float:
    """The reference's sigma (plain, or magnitude-aware with eps = 1e-3), shared by the three measures reading it."""
    if int(draws) < 1 or int(depth) < 1:
        raise MeasureError(f"model {view.model_id}: the PAC-Bayes search needs draws >= 1 and depth >= 1, "
                           f"got {draws} and {depth}")
    x, y = view.sample(n)

    def compute():
        if len(y) == 0:
            raise MeasureError(f"model {view.model_id}: the PAC-Bayes search needs training data, the sample is empty")
        generator = torch.Generator()
        generator.manual_seed(SEED_OFFSET + int(seed) if seed is not None
                              else view.seed(f"{view.task_name}/{view.model_id}/ref_pacbayes"))
        with torch.inference_mode(False):
            logits = _batches(view, view.network, x, batch_size)
            accuracy = float((logits.argmax(1).cpu() == y).double().mean())
            network = _reparametrized(view)
            return reference_sigma(network, x, y, accuracy, generator,
                                   magnitude_eps=MAGNITUDE_EPS if magnitude else None, depth=int(depth),
                                   draws=int(draws), batch_size=int(batch_size or view.batch_size))
    return _shared(view, ("sigma", magnitude, len(y), int(draws), int(depth), seed, view.repeat), compute)


# -- scale ------------------------------------------------------------------------------------


def _log_scaled(view: ModelView, value: float) -> float:
    """The reference's scale of a LOG_ measure: 0.5 * (value - log m)."""
    return float(0.5 * (value - math.log(view.num_train)))


def _scaled(view: ModelView, value: float) -> float:
    """The reference's scale of every other measure: sqrt(value / m)."""
    if not value >= 0:
        raise MeasureError(f"model {view.model_id}: the value {value!r} is negative, its reference scale "
                           f"sqrt(value / m) is undefined (the reference returns NaN)")
    return float(math.sqrt(value / view.num_train))


# -- vector norms and counting ----------------------------------------------------------------


@measure("ref_l2", source=_source("L2, 'other measures'"), stochastic=False)
def ref_l2(view: ModelView) -> float:
    """sqrt(||w||_2 / m), w the BN-folded kernels without biases or BatchNorm (reference L2; larger predicts a larger gap).

    ||w||_2 is the (unsquared) Euclidean norm of all kernel entries; compare ``weight_norm`` (the
    starting kit's sum of squares of every Keras weight array, BatchNorm statistics included).
    """
    return _scaled(view, float(np.linalg.norm(_vector(_kernels(view)))))


@measure("ref_l2_dist", source=_source("L2_DIST, 'other measures'"), stochastic=False)
def ref_l2_dist(view: ModelView) -> float:
    """sqrt(||w - w0||_2 / m) over the BN-folded kernels, biases and BatchNorm left out (reference L2_DIST; larger predicts a larger gap).

    w0: the folded kernels of the initial network. Compare ``distance_from_init`` (squared, over every
    Keras weight array, BatchNorm statistics included).
    """
    return _scaled(view, float(np.linalg.norm(_vector(_distances(view)))))


@measure("ref_params", source=_source("eq. 20, params"), stochastic=False)
def ref_params(view: ModelView) -> float:
    """sqrt(omega / m), omega the number of kernel entries, biases and BatchNorm left out (reference PARAMS; larger predicts a larger gap).

    Compare ``parameter_count`` (every trainable parameter, biases and BatchNorm gamma/beta included).
    """
    return _scaled(view, float(_vector(_kernels(view)).size))


@measure("ref_param_norm", source=_source("eq. 42, param norm"), stochastic=False)
def ref_param_norm(view: ModelView) -> float:
    """sqrt(sum_i ||W_i||_F^2 / m) over the BN-folded kernels (reference PARAM_NORM; larger predicts a larger gap)."""
    return _scaled(view, float(np.sum(_squared_norms(view, "fro"))))


@measure("ref_fro_dist", source=_source("eq. 40, Frobenius distance to initialization"), stochastic=False)
def ref_fro_dist(view: ModelView) -> float:
    """sqrt(sum_i ||W_i - W0_i||_F^2 / m) over the BN-folded kernels (reference FRO_DIST; larger predicts a larger gap)."""
    return _scaled(view, float(np.sum(_squared_norms(view, "dist_fro"))))


@measure("ref_dist_spec_init", source=_source("eq. 41, spectral distance to initialization"), stochastic=False)
def ref_dist_spec_init(view: ModelView) -> float:
    """sqrt(sum_i ||W_i - W0_i||_2^2 / m), reshaped BN-folded kernels (reference DIST_SPEC_INIT; larger predicts a larger gap)."""
    return _scaled(view, float(np.sum(_squared_norms(view, "dist_spec"))))


@measure("ref_dist_spec_init_fft", source=_source("eq. 41 with exact convolution spectral norms"), stochastic=False)
def ref_dist_spec_init_fft(view: ModelView) -> float:
    """sqrt(sum_i ||conv(W_i - W0_i)||_2^2 / m), FFT spectral norms on the input size (reference DIST_SPEC_INIT_FFT; larger predicts a larger gap)."""
    return _scaled(view, float(np.sum(_squared_norms(view, "dist_fft"))))


# -- spectral and Frobenius products and sums -------------------------------------------------


def _log_sum_of(view: ModelView, log_prod: float) -> float:
    d = len(_kernels(view))
    return math.log(d) + log_prod / d


@measure("ref_log_prod_of_spec", source=_source("eq. 32, log prod of spec"), stochastic=False)
def ref_log_prod_of_spec(view: ModelView) -> float:
    """0.5 (log prod_i ||W_i||_2^2 - log m), reshaped BN-folded kernels (reference LOG_PROD_OF_SPEC; larger predicts a larger gap).

    The raw value is the norms family's ``log_prod_spectral`` on the same kernels, but without the
    diag(s) of BatchNorms that cannot be folded.
    """
    return _log_scaled(view, _log_sum(view, "spec"))


@measure("ref_log_sum_of_spec", source=_source("eq. 35, log sum of spec"), stochastic=False)
def ref_log_sum_of_spec(view: ModelView) -> float:
    """0.5 (log d + (1/d) log prod_i ||W_i||_2^2 - log m) (reference LOG_SUM_OF_SPEC; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum_of(view, _log_sum(view, "spec")))


@measure("ref_log_prod_of_fro", source=_source("eq. 37, log prod of fro"), stochastic=False)
def ref_log_prod_of_fro(view: ModelView) -> float:
    """0.5 (log prod_i ||W_i||_F^2 - log m) over the BN-folded kernels (reference LOG_PROD_OF_FRO; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum(view, "fro"))


@measure("ref_log_sum_of_fro", source=_source("eq. 39, log sum of fro"), stochastic=False)
def ref_log_sum_of_fro(view: ModelView) -> float:
    """0.5 (log d + (1/d) log prod_i ||W_i||_F^2 - log m) (reference LOG_SUM_OF_FRO; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum_of(view, _log_sum(view, "fro")))


@measure("ref_fro_over_spec", source=_source("eq. 33, fro over spec"), stochastic=False)
def ref_fro_over_spec(view: ModelView) -> float:
    """sqrt(sum_i ||W_i||_F^2 / ||W_i||_2^2 / m), the summed stable ranks (reference FRO_OVER_SPEC; larger predicts a larger gap)."""
    return _scaled(view, float(np.sum(_squared_norms(view, "fro") / _squared_norms(view, "spec"))))


@measure("ref_log_prod_of_spec_fft", source=_source("eq. 32 with exact convolution spectral norms"), stochastic=False)
def ref_log_prod_of_spec_fft(view: ModelView) -> float:
    """0.5 (log prod_i ||conv(W_i)||_2^2 - log m), FFT spectral norms on the input size (reference LOG_PROD_OF_SPEC_FFT; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum(view, "fft"))


@measure("ref_log_sum_of_spec_fft", source=_source("eq. 35 with exact convolution spectral norms"), stochastic=False)
def ref_log_sum_of_spec_fft(view: ModelView) -> float:
    """0.5 (log d + (1/d) log prod_i ||conv(W_i)||_2^2 - log m) (reference LOG_SUM_OF_SPEC_FFT; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum_of(view, _log_sum(view, "fft")))


@measure("ref_fro_over_spec_fft", source=_source("eq. 33 with exact convolution spectral norms"), stochastic=False)
def ref_fro_over_spec_fft(view: ModelView) -> float:
    """sqrt(sum_i ||W_i||_F^2 / ||conv(W_i)||_2^2 / m), FFT spectral norms (reference FRO_OVER_SPEC_FFT; larger predicts a larger gap)."""
    return _scaled(view, float(np.sum(_squared_norms(view, "fro") / _squared_norms(view, "fft"))))


# -- path norm --------------------------------------------------------------------------------


def _path_norm(view: ModelView) -> float:
    return _shared(view, ("path_norm",),
                   lambda: squared_parameter_output(_reparametrized(view), tuple(view.x_train.shape[1:])))


@measure("ref_path_norm", source=_source("eq. 44, path norm"), stochastic=False)
def ref_path_norm(view: ModelView) -> float:
    """sqrt(f_{w^2}(1) / m) with every parameter (biases, BatchNorm gamma/beta) squared (reference PATH_NORM; larger predicts a larger gap).

    On the reparametrized network (module docstring): equal to the norms family's
    ``path_norm(include_bias=True)`` without BatchNorm; with it, each folded BatchNorm still divides
    by sqrt(1 + eps). Compare ``path_norm`` (biases left out by default).
    """
    return _scaled(view, _path_norm(view))


# -- over the margin --------------------------------------------------------------------------


@measure("ref_inverse_margin", source=_source("eq. 22, 1 / margin^2"))
def ref_inverse_margin(view: ModelView, n: int | None = None) -> float:
    """sqrt(1 / (gamma^2 m)), gamma the |floor(N/10)-th smallest| output margin (reference INVERSE_MARGIN; larger predicts a larger gap).

    ``n``: samples of the shared training sample (default ``view.sample_size``; the reference uses
    the whole split). Compare ``inverse_margin`` (interpolated percentile, positive-margin fallback).
    """
    return _scaled(view, 1.0 / _margin(view, n) ** 2)


@measure("ref_log_prod_of_spec_over_margin", source=_source("eq. 31, log prod of spec over margin"))
def ref_log_prod_of_spec_over_margin(view: ModelView, n: int | None = None) -> float:
    """0.5 (log prod_i ||W_i||_2^2 - 2 log gamma - log m) (reference LOG_PROD_OF_SPEC_OVER_MARGIN; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum(view, "spec") - _log_margin2(view, n))


@measure("ref_log_sum_of_spec_over_margin", source=_source("eq. 34, log sum of spec over margin"))
def ref_log_sum_of_spec_over_margin(view: ModelView, n: int | None = None) -> float:
    """0.5 (log d + (1/d)(log prod_i ||W_i||_2^2 - 2 log gamma) - log m) (reference LOG_SUM_OF_SPEC_OVER_MARGIN; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum_of(view, _log_sum(view, "spec") - _log_margin2(view, n)))


@measure("ref_log_spec_init_main", source=_source("eq. 29, spec init main"))
def ref_log_spec_init_main(view: ModelView, n: int | None = None) -> float:
    """0.5 (log(prod ||W_i||_2^2 / gamma^2) + log sum_i ||W_i - W0_i||_F^2 / ||W_i||_2^2 - log m) (reference LOG_SPEC_INIT_MAIN; larger predicts a larger gap)."""
    ratio = float(np.sum(_squared_norms(view, "dist_fro") / _squared_norms(view, "spec")))
    return _log_scaled(view, _log_sum(view, "spec") - _log_margin2(view, n) + math.log(ratio))


@measure("ref_log_spec_orig_main", source=_source("eq. 30, spec orig main"))
def ref_log_spec_orig_main(view: ModelView, n: int | None = None) -> float:
    """0.5 (log(prod ||W_i||_2^2 / gamma^2) + log sum_i ||W_i||_F^2 / ||W_i||_2^2 - log m) (reference LOG_SPEC_ORIG_MAIN; larger predicts a larger gap)."""
    ratio = float(np.sum(_squared_norms(view, "fro") / _squared_norms(view, "spec")))
    return _log_scaled(view, _log_sum(view, "spec") - _log_margin2(view, n) + math.log(ratio))


@measure("ref_log_prod_of_fro_over_margin", source=_source("eq. 36, log prod of fro over margin"))
def ref_log_prod_of_fro_over_margin(view: ModelView, n: int | None = None) -> float:
    """0.5 (log prod_i ||W_i||_F^2 - 2 log gamma - log m) (reference LOG_PROD_OF_FRO_OVER_MARGIN; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum(view, "fro") - _log_margin2(view, n))


@measure("ref_log_sum_of_fro_over_margin", source=_source("eq. 38, log sum of fro over margin"))
def ref_log_sum_of_fro_over_margin(view: ModelView, n: int | None = None) -> float:
    """0.5 (log d + (1/d)(log prod_i ||W_i||_F^2 - 2 log gamma) - log m) (reference LOG_SUM_OF_FRO_OVER_MARGIN; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum_of(view, _log_sum(view, "fro") - _log_margin2(view, n)))


@measure("ref_path_norm_over_margin", source=_source("eq. 43, path norm over margin"))
def ref_path_norm_over_margin(view: ModelView, n: int | None = None) -> float:
    """sqrt(f_{w^2}(1) / (gamma^2 m)), ``ref_path_norm`` over the squared margin (reference PATH_NORM_OVER_MARGIN; larger predicts a larger gap)."""
    return _scaled(view, _path_norm(view) / _margin(view, n) ** 2)


@measure("ref_log_prod_of_spec_over_margin_fft", source=_source("eq. 31 with exact convolution spectral norms"))
def ref_log_prod_of_spec_over_margin_fft(view: ModelView, n: int | None = None) -> float:
    """0.5 (log prod_i ||conv(W_i)||_2^2 - 2 log gamma - log m) (reference LOG_PROD_OF_SPEC_OVER_MARGIN_FFT; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum(view, "fft") - _log_margin2(view, n))


@measure("ref_log_sum_of_spec_over_margin_fft", source=_source("eq. 34 with exact convolution spectral norms"))
def ref_log_sum_of_spec_over_margin_fft(view: ModelView, n: int | None = None) -> float:
    """0.5 (log d + (1/d)(log prod_i ||conv(W_i)||_2^2 - 2 log gamma) - log m) (reference LOG_SUM_OF_SPEC_OVER_MARGIN_FFT; larger predicts a larger gap)."""
    return _log_scaled(view, _log_sum_of(view, _log_sum(view, "fft") - _log_margin2(view, n)))


@measure("ref_log_spec_init_main_fft", source=_source("eq. 29 with exact convolution spectral norms"))
def ref_log_spec_init_main_fft(view: ModelView, n: int | None = None) -> float:
    """0.5 (log(prod ||conv(W_i)||_2^2 / gamma^2) + log sum_i ||W_i - W0_i||_F^2 / ||conv(W_i)||_2^2 - log m) (reference LOG_SPEC_INIT_MAIN_FFT; larger predicts a larger gap)."""
    ratio = float(np.sum(_squared_norms(view, "dist_fro") / _squared_norms(view, "fft")))
    return _log_scaled(view, _log_sum(view, "fft") - _log_margin2(view, n) + math.log(ratio))


@measure("ref_log_spec_orig_main_fft", source=_source("eq. 30 with exact convolution spectral norms"))
def ref_log_spec_orig_main_fft(view: ModelView, n: int | None = None) -> float:
    """0.5 (log(prod ||conv(W_i)||_2^2 / gamma^2) + log sum_i ||W_i||_F^2 / ||conv(W_i)||_2^2 - log m) (reference LOG_SPEC_ORIG_MAIN_FFT; larger predicts a larger gap)."""
    ratio = float(np.sum(_squared_norms(view, "fro") / _squared_norms(view, "fft")))
    return _log_scaled(view, _log_sum(view, "fft") - _log_margin2(view, n) + math.log(ratio))


# -- PAC-Bayes --------------------------------------------------------------------------------
# Parameters of every PAC-Bayes measure: ``n`` samples of the shared training sample the search runs on
# (the reference: the whole split), ``draws`` perturbed networks per trial (the reference's
# montecarlo_samples, 10), ``depth`` trials at most (its search_depth, 15), ``seed`` (None: a seed of the
# model and repeat, shared by the six measures; an int s: the reference's generator seed 10348628753 + s,
# for comparing with it), ``batch_size`` forward batch size (None: ``view.batch_size``).

_N_SEARCH = 200


@measure("ref_pacbayes_init", source=_source("eq. 48, PAC-Bayes init"))
def ref_pacbayes_init(view: ModelView, n: int | None = _N_SEARCH, draws: int = 10, depth: int = 15,
                      seed: int | None = None, batch_size: int | None = None) -> float:
    """sqrt((||w - w0||^2 / (4 sigma^2) + log(m / sigma) + 10) / m), sigma the reference's search (reference PACBAYES_INIT; larger predicts a larger gap).

    w - w0 over the BN-folded kernels; sigma of ``measures.stats.perturbation.reference_sigma`` (noise
    of standard deviation sigma^2 on every parameter). Parameters: see the comment above the PAC-Bayes
    measures in ``measures/families/reference.py``.
    """
    sigma = _sigma(view, False, n, draws, depth, seed, batch_size)
    return _scaled(view, pacbayes_bound(_vector(_distances(view)), sigma, view.num_train))


@measure("ref_pacbayes_orig", source=_source("eq. 49, PAC-Bayes orig"))
def ref_pacbayes_orig(view: ModelView, n: int | None = _N_SEARCH, draws: int = 10, depth: int = 15,
                      seed: int | None = None, batch_size: int | None = None) -> float:
    """sqrt((||w||^2 / (4 sigma^2) + log(m / sigma) + 10) / m), sigma the reference's search (reference PACBAYES_ORIG; larger predicts a larger gap)."""
    sigma = _sigma(view, False, n, draws, depth, seed, batch_size)
    return _scaled(view, pacbayes_bound(_vector(_kernels(view)), sigma, view.num_train))


@measure("ref_pacbayes_flatness", source=_source("eq. 53, PAC-Bayes flatness"))
def ref_pacbayes_flatness(view: ModelView, n: int | None = _N_SEARCH, draws: int = 10, depth: int = 15,
                          seed: int | None = None, batch_size: int | None = None) -> float:
    """sqrt(1 / (sigma^2 m)), sigma the reference's search (reference PACBAYES_FLATNESS; larger predicts a larger gap).

    Compare ``pacbayes_sigma`` (noise of standard deviation sigma, error tolerance, log-scale bisection).
    """
    sigma = _sigma(view, False, n, draws, depth, seed, batch_size)
    return _scaled(view, 1.0 / sigma**2)


@measure("ref_pacbayes_mag_init", source=_source("eq. 56, PAC-Bayes magnitude-aware init"))
def ref_pacbayes_mag_init(view: ModelView, n: int | None = _N_SEARCH, draws: int = 10, depth: int = 15,
                          seed: int | None = None, batch_size: int | None = None) -> float:
    """sqrt((1/4 sum_i log((eps^2 + (s^2+1)||w-w0||^2/omega) / (eps^2 + s^2 (w_i-w0_i)^2)) + log(m/s) + 10) / m) (reference PACBAYES_MAG_INIT; larger predicts a larger gap).

    s: the magnitude-aware search (noise of standard deviation s^2 |p|^2 + eps^2, eps = 1e-3).
    """
    sigma = _sigma(view, True, n, draws, depth, seed, batch_size)
    distance = _vector(_distances(view))
    return _scaled(view, pacbayes_magnitude_bound(distance, distance, sigma, MAGNITUDE_EPS, view.num_train))


@measure("ref_pacbayes_mag_orig", source=_source("eq. 57, PAC-Bayes magnitude-aware orig"))
def ref_pacbayes_mag_orig(view: ModelView, n: int | None = _N_SEARCH, draws: int = 10, depth: int = 15,
                          seed: int | None = None, batch_size: int | None = None) -> float:
    """sqrt((1/4 sum_i log((eps^2 + (s^2+1)||w||^2/omega) / (eps^2 + s^2 (w_i-w0_i)^2)) + log(m/s) + 10) / m) (reference PACBAYES_MAG_ORIG; larger predicts a larger gap).

    The denominator reads w - w0, as in the reference.
    """
    sigma = _sigma(view, True, n, draws, depth, seed, batch_size)
    return _scaled(view, pacbayes_magnitude_bound(_vector(_kernels(view)), _vector(_distances(view)), sigma,
                                                  MAGNITUDE_EPS, view.num_train))


@measure("ref_pacbayes_mag_flatness", source=_source("eq. 61, PAC-Bayes magnitude-aware flatness"))
def ref_pacbayes_mag_flatness(view: ModelView, n: int | None = _N_SEARCH, draws: int = 10, depth: int = 15,
                              seed: int | None = None, batch_size: int | None = None) -> float:
    """sqrt(1 / (s^2 m)), s the reference's magnitude-aware search (reference PACBAYES_MAG_FLATNESS; larger predicts a larger gap)."""
    sigma = _sigma(view, True, n, draws, depth, seed, batch_size)
    return _scaled(view, 1.0 / sigma**2)
