"""Flatness baselines of Jiang et al., ICLR 2020, "Fantastic Generalization Measures and Where to Find
Them": worst-case sharpness (after Keskar et al., ICLR 2017) and PAC-Bayes flatness (after Neyshabur
et al., NeurIPS 2017, and Dziugaite & Roy, UAI 2017), both in Jiang et al.'s "1 / scale^2" form.

Conventions shared by both measures:

* They never touch ``view.network``: they perturb a ``copy.deepcopy`` of it (on ``view.device``),
  kept in eval mode (BatchNorm normalizes with its moving statistics, Dropout is off), and run that
  copy themselves, in batches that stop early (``view.forward`` runs the unperturbed network).
  Random draws come from CPU ``torch.Generator``s (the same values on every device) and are moved
  to the device.
* Perturbed: every parameter of the network (``network.parameters()``: conv and dense kernels and
  biases, BatchNorm gamma and beta); never a buffer (BatchNorm moving mean and variance).
* Accuracy and 0-1 error are exact counts (argmax of the logits, ties to the lower class index) on the
  shared stratified training sample ``view.sample(n)``, in batches of ``batch_size``. The baseline is
  the unperturbed network on that same sample. An evaluation stops as soon as the misclassified count
  already decides that the tolerance is broken, so clearly too large perturbations cost little.
* The largest admissible scale is found by bisection on a log scale between the two bounds: the
  upper bound is tried first (when it is admissible the measure returns 1 / upper^2); after
  ``iterations`` halvings of the bracket the measure returns the geometric midpoint of the final
  bracket; when no tried scale was admissible the lower bound is tried, and when it is not admissible
  either the measure returns 1 / lower^2 (the model counts as maximally sharp). The final bracket
  spans a factor (upper / lower) ** (1 / 2**iterations), so the result is within half of that factor
  of the crossing (twice that in log terms for the 1 / scale^2 score).
* Admissibility need not be monotone in the scale on a real network; bisection then finds one of the
  crossings. The random draws are the same for every scale tried (drawn once and scaled for each
  trial), so each trial is a deterministic function of the scale, and reruns on the same model
  repeat exactly.
* Common random numbers across models: the noise of each parameter tensor comes from its own
  ``view.torch_generator(key)``, keyed by the measure, the repeat and the parameter's name
  (``network.named_parameters()``, e.g. ``conv2d_1.weight``), not by the model. Models of the same
  architecture therefore get identical noise, tensor for tensor, in a repeat (what differs between
  their values is their weights); a tensor whose shape differs between two models gets different
  noise in each (there is no common draw of two shapes), while the other tensors of those models
  still share theirs. Another repeat draws other noise.
* Tolerances are absolute differences of accuracy / error fractions (0.1 = 10 percentage points, as in
  Jiang et al.); a model whose baseline accuracy is at most ``tolerance`` (chance level on 10 classes)
  admits every perturbation and scores 1 / upper^2.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..citations import JIANG_2020
from ..model_view import ModelView
from ..registry import MeasureError, measure

_SLACK = 1e-9  # for flooring counts computed from float tolerances (0.1 * 100 = 10.000000000000002)


# -- shared machinery ---------------------------------------------------------------------------


class _Perturbed:
    """A private copy of the model's network, its sample and its unperturbed parameters."""

    def __init__(self, view: ModelView, name: str, n: int | None, batch_size: int | None):
        if n is not None and int(n) < 1:
            raise MeasureError(f"model {view.model_id}: {name} needs a sample size n >= 1, got {n}")
        if batch_size is not None and int(batch_size) < 1:
            raise MeasureError(f"model {view.model_id}: {name} needs batch_size >= 1, got {batch_size}")
        x, y = view.sample(n)
        if len(y) == 0:
            raise MeasureError(f"model {view.model_id}: {name} needs training data, the sample is empty")
        self.network = copy.deepcopy(view.network).eval()
        named = list(self.network.named_parameters())
        self.names = [name for name, _ in named]  # key the per-tensor noise (module docstring)
        self.params = [p for _, p in named]
        if not self.params:
            raise MeasureError(f"model {view.model_id}: {name} needs a network with trainable parameters, it has none")
        self.base = [p.detach().clone() for p in self.params]
        self.x = x.to(device=self.base[0].device, dtype=self.base[0].dtype)
        if self.x.dim() == 4:  # images in channels-last order, as ``ModelView.forward`` runs them (same values)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = y.to(device=self.base[0].device, dtype=torch.long)
        self.size = len(self.y)
        self.batch = int(batch_size or view.batch_size)

    def load(self, offsets: list[torch.Tensor] | None) -> None:
        """Set the parameters to base + offsets (the unperturbed ones for None)."""
        with torch.no_grad():
            for p, w, d in zip(self.params, self.base, offsets or [None] * len(self.base)):
                p.copy_(w if d is None else w + d)

    def batches(self):
        for start in range(0, self.size, self.batch):
            yield self.x[start : start + self.batch], self.y[start : start + self.batch]

    def wrong(self, limit: float = math.inf) -> int:
        """Misclassified samples of the current parameters; stops early once the count exceeds ``limit``."""
        count = 0
        with torch.inference_mode():
            for xb, yb in self.batches():
                count += int((self.network(xb).argmax(1) != yb).sum())
                if count > limit:
                    break
        return count


def _log_bisect(admissible: Callable[[float], bool], low: float, high: float, iterations: int) -> float:
    """The largest admissible scale in [low, high], by bisection on log(scale); see the module docstring."""
    if admissible(high):
        return high
    lo, hi = math.log(low), math.log(high)
    found = False
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if admissible(math.exp(mid)):
            lo, found = mid, True
        else:
            hi = mid
    if not found and not admissible(low):
        return low
    return math.exp(0.5 * (lo + hi))


def _check_search(view: ModelView, name: str, what: str, low: float, high: float, iterations: int,
                  tolerance: float) -> None:
    if not (low > 0 and high > low and math.isfinite(high)):
        raise MeasureError(f"model {view.model_id}: {name} needs 0 < {what}_min < {what}_max < inf, "
                           f"got {low} and {high}")
    if int(iterations) < 0:
        raise MeasureError(f"model {view.model_id}: {name} needs iterations >= 0, got {iterations}")
    if not (0 <= tolerance < 1):
        raise MeasureError(f"model {view.model_id}: {name} needs 0 <= tolerance < 1, got {tolerance}")


def _noise(view: ModelView, model: _Perturbed, draw: Callable, prefix: str = "") -> list[torch.Tensor]:
    """``draw`` (``torch.rand`` or ``torch.randn``) of each parameter's shape and dtype, from the
    task-shared generator keyed by ``prefix`` + the parameter's name (module docstring), on its device."""
    return [draw(w.shape, generator=view.torch_generator(prefix + name), dtype=w.dtype).to(w.device)
            for name, w in zip(model.names, model.base)]


# -- sharpness ----------------------------------------------------------------------------------


@measure("sharpness",
         source=f"Keskar et al., ICLR 2017 (sharpness); {JIANG_2020} (sharpness flatness 1/alpha'^2)", sign=1,
         version="2")
def sharpness(view: ModelView, n: int | None = 100, tolerance: float = 0.1, steps: int = 5,
              iterations: int = 10, alpha_min: float = 1e-4, alpha_max: float = 1.0,
              batch_size: int | None = 50) -> float:
    """1 / alpha'^2, alpha' the largest relative worst-case weight perturbation keeping the training accuracy within a tolerance (larger predicts a larger gap).

    alpha' is the largest alpha such that every perturbation nu in the relative box
    |nu_i| <= alpha * |w_i| (all parameters w, see the module docstring) keeps the accuracy on the
    training sample at least acc0 - ``tolerance``, acc0 the unperturbed accuracy. A flat minimum
    tolerates a large alpha' and scores low; a sharp one scores high.

    Choices the paper leaves open:

    * The box is relative to each weight's magnitude (Keskar et al.'s magnitude-aware box without
      their "+1", i.e. Jiang et al.'s magnitude-aware sharpness with epsilon' = 0): the measure is
      invariant to the layer-wise rescalings of a ReLU network that leave its function unchanged, and
      a weight that is exactly 0 is never perturbed.
    * The maximization over the box is approximated by ``steps`` steps of projected sign-gradient
      ascent on the summed cross-entropy of the sample (an FGSM/PGD attack on the weights), from a
      uniformly random point of the box, with step size alpha * |w_i| per weight (half the box width:
      while the gradient signs stay the same, two steps reach the corner they point to from anywhere
      in the box) and clipping
      back into the box after each step. The perturbation breaks the tolerance when the accuracy at
      any point visited (the start, each step, the end) is below acc0 - ``tolerance``; each point is
      checked on the forward pass that computes its gradient, and an evaluation stops at the first
      point that breaks it. The random start is drawn once (per tensor from
      ``view.torch_generator(parameter name)``, shared by the task's models of one architecture:
      module docstring), so every alpha tries the same point of the unit box scaled by alpha.
      ``steps=0`` checks the random point only.
    * Bisection on log(alpha) between ``alpha_min`` and ``alpha_max`` over ``iterations`` halvings
      (module docstring). alpha_max = 1 (100 % relative perturbation) breaks any trained network at
      once; VGGs trained to ~90-99 % on synthetic 32x32 data gave alpha' ~ 5e-3 (width 64, 2.2 M
      parameters) to 3e-2 (width 16), so alpha_min = 1e-4 leaves a wide margin below for deeper or
      sharper networks. 10 halvings of those 4 decades resolve alpha' to about 0.5 % (1 % on the score).

    Parameters: ``n`` sample size (the shared stratified sample; n = 100 with 5 steps and 10 halvings
    fits the 300 s budget on a task-1-sized VGG, see ``docs/measure_times.json``; a model at chance
    level stops at once), ``tolerance`` allowed absolute accuracy drop, ``steps`` ascent
    steps per trial, ``iterations`` bisection halvings,
    ``alpha_min``/``alpha_max`` the search range, ``batch_size`` forward/backward batch size (None:
    ``view.batch_size``; small batches let a broken trial stop sooner).
    """
    name = "sharpness"
    _check_search(view, name, "alpha", alpha_min, alpha_max, iterations, tolerance)
    if int(steps) < 0:
        raise MeasureError(f"model {view.model_id}: {name} needs steps >= 0, got {steps}")
    with torch.inference_mode(False):
        model = _Perturbed(view, name, n, batch_size)
        limit = math.floor(model.wrong() + tolerance * model.size + _SLACK)  # most misclassified allowed
        if limit >= model.size:
            return float(1.0 / alpha_max**2)  # nothing can break the tolerance
        magnitude = [w.abs() for w in model.base]
        # the random start in the unit box, the same for every alpha
        unit = [u * 2 - 1 for u in _noise(view, model, torch.rand)]
        for p in model.params:
            p.requires_grad_(True)

        def wrong_with_gradient() -> int:
            """Misclassified count of the current parameters, and their cross-entropy gradient in .grad."""
            for p in model.params:
                p.grad = None
            count = 0
            with torch.enable_grad():
                for xb, yb in model.batches():
                    logits = model.network(xb)
                    count += int((logits.detach().argmax(1) != yb).sum())
                    if count > limit:
                        break
                    F.cross_entropy(logits, yb, reduction="sum").backward()
            return count

        def admissible(alpha: float) -> bool:
            radius = [alpha * m for m in magnitude]
            nu = [u * r for u, r in zip(unit, radius)]
            for _ in range(int(steps)):
                model.load(nu)
                if wrong_with_gradient() > limit:
                    return False
                with torch.no_grad():
                    nu = [torch.minimum(torch.maximum(v + r * p.grad.sign(), -r), r) if p.grad is not None else v
                          for v, r, p in zip(nu, radius, model.params)]
            model.load(nu)
            return model.wrong(limit) <= limit

        alpha = _log_bisect(admissible, alpha_min, alpha_max, int(iterations))
    return float(1.0 / alpha**2)


# -- PAC-Bayes flatness -------------------------------------------------------------------------


@measure("pacbayes_sigma",
         source=f"Neyshabur et al., NeurIPS 2017; Dziugaite & Roy, UAI 2017; {JIANG_2020} (pacbayes flatness 1/sigma'^2)",
         sign=1, version="2")
def pacbayes_sigma(view: ModelView, n: int | None = 100, tolerance: float = 0.1, draws: int = 10,
                   iterations: int = 10, sigma_min: float = 1e-5, sigma_max: float = 1.0,
                   batch_size: int | None = 50) -> float:
    """1 / sigma'^2, sigma' the largest isotropic Gaussian weight noise keeping the expected training error within a tolerance (larger predicts a larger gap).

    sigma' is the largest sigma such that E_u[err(w + u)] - err(w) <= ``tolerance`` with
    u ~ N(0, sigma^2 I) over all parameters w (module docstring), err the 0-1 error on the training
    sample. A flat minimum tolerates a large sigma' and scores low.

    Choices the paper leaves open:

    * The noise is isotropic and absolute (the same sigma for every kernel entry, bias and BatchNorm
      gamma/beta), as in Jiang et al.'s pacbayes.flatness (not its magnitude-aware variant).
    * The expectation is the mean over ``draws`` Monte-Carlo noise draws. Draw k is sigma * g_k with
      g_k a standard normal vector drawn once (per tensor from ``view.torch_generator("draw<k>/<parameter
      name>")``, shared by the task's models of one architecture: module docstring; the draws are kept,
      one copy of the parameters each), so the estimated error is a deterministic function of sigma and
      the same directions are compared at every scale. A trial
      stops as soon as the misclassified count summed over the draws already exceeds the allowance.
    * Bisection on log(sigma) between ``sigma_min`` and ``sigma_max`` over ``iterations`` halvings
      (module docstring). The VGGs trained for the timing of ``sharpness`` gave sigma' ~ 1.6e-2
      (width 64) to 3.8e-2 (width 16); the 5 decades searched leave a wide margin on both sides, and
      10 halvings resolve sigma' to about 0.6 % (1.1 % on the score), under the Monte-Carlo error of
      10 draws.

    Parameters: ``n`` sample size (shared stratified sample; n * draws forward passes per trial;
    n = 100 and 10 draws fit the 300 s budget on a task-1-sized VGG, see ``docs/measure_times.json``),
    ``tolerance`` allowed absolute increase of the mean error, ``draws`` Monte-Carlo draws per
    trial, ``iterations`` bisection halvings, ``sigma_min``/``sigma_max`` the search range,
    ``batch_size`` forward batch size (None: ``view.batch_size``).
    """
    name = "pacbayes_sigma"
    _check_search(view, name, "sigma", sigma_min, sigma_max, iterations, tolerance)
    if int(draws) < 1:
        raise MeasureError(f"model {view.model_id}: {name} needs draws >= 1, got {draws}")
    draws = int(draws)
    with torch.inference_mode(False):
        model = _Perturbed(view, name, n, batch_size)
        # mean over draws of wrong_k / size <= wrong0 / size + tolerance, in counts summed over draws
        limit = math.floor(draws * (model.wrong() + tolerance * model.size) + _SLACK * draws * model.size)
        if limit >= draws * model.size:
            return float(1.0 / sigma_max**2)
        directions = []  # g_k of each draw, drawn once: every sigma scales the same ones

        def admissible(sigma: float) -> bool:
            total = 0
            for k in range(draws):
                if k == len(directions):
                    directions.append(_noise(view, model, torch.randn, f"draw{k}/"))
                model.load([sigma * g for g in directions[k]])
                total += model.wrong(limit - total)
                if total > limit:
                    return False
            return True

        sigma = _log_bisect(admissible, sigma_min, sigma_max, int(iterations))
    return float(1.0 / sigma**2)
