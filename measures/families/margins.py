"""Margin- and sensitivity-based baselines of Jiang et al., ICLR 2020, "Fantastic Generalization
Measures and Where to Find Them": inverse output margin, spectrally normalized margin, Jacobian norm.

Conventions shared by the margin measures:

* The output margin of a sample (x, y) is ``f(x)[y] - max_{j != y} f(x)[j]`` on the logits; it is
  negative when the sample is misclassified and 0 on a tie.
* gamma is the ``percentile``-th percentile (10th by default, as in Jiang et al.) of the output margins
  over the shared stratified training sample ``view.sample(n)``, computed with ``numpy.percentile``
  (its default "linear" method) in float64.
* When that percentile is <= 0 (more than about ``percentile`` % of the sample is misclassified, which
  Jiang et al. never meet because their models are trained to ~100% training accuracy), gamma is the
  same percentile of the margins of the correctly classified samples only (all > 0). This keeps
  gamma positive, finite and scale-aware instead of dividing by a non-positive number; a fixed huge
  value would rank every under-fit model as the most complex, although under-fit models tend to have
  small generalization gaps. When no sample of the sample is classified correctly the measure fails
  with ``MeasureError``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..citations import JIANG_2020
from ..model_view import ModelView
from ..registry import MeasureError, measure
from ..stats.margins import margin_gamma, output_margin


def _gamma(view: ModelView, n: int | None, batch_size: int | None, percentile: float) -> float:
    """gamma of the output margins on the shared sample (its cached logits, or a pass in batches of
    ``batch_size``); MeasureError naming the model when it is undefined."""
    x, y = view.sample(n)
    logits = view.activations("logits", n) if batch_size is None else view.forward(x, batch_size=batch_size)
    try:
        return margin_gamma(output_margin(logits, y), percentile)
    except ValueError as exc:
        raise MeasureError(f"model {view.model_id}: {exc}") from None


@measure("inverse_margin", source=f"{JIANG_2020} (1/margin, gamma the 10th-percentile margin)", sign=1)
def inverse_margin(view: ModelView, n: int | None = None, batch_size: int | None = None,
                   percentile: float = 10.0) -> float:
    """1 / gamma^2, gamma the 10th-percentile output margin on the training sample (larger predicts a larger gap).

    Parameters: ``n`` sample size (default ``view.sample_size``; the shared stratified sample),
    ``batch_size`` forward-pass batch size (default ``view.batch_size``), ``percentile`` which
    percentile of the margins is gamma (10 in Jiang et al.). See the module docstring for gamma
    when the percentile margin is <= 0.
    """
    gamma = _gamma(view, n, batch_size, percentile)
    return float(1.0 / gamma**2)


@measure("spectral_margin",
         source=f"Bartlett, Foster & Telgarsky, NeurIPS 2017; {JIANG_2020} (prod-of-spec/margin)", sign=1)
def spectral_margin(view: ModelView, n: int | None = None, batch_size: int | None = None,
                    percentile: float = 10.0) -> float:
    """log( prod_i ||W_i||_2^2 / gamma^2 ), spectral norms of the layers over the squared margin (larger predicts a larger gap).

    ``W_i`` are ``view.weight_matrices()``: reshaped conv kernels (out, in*kh*kw) and dense kernels
    with BatchNorm folded into the preceding layer (as in ``log_prod_spectral``); ``||.||_2``
    is the largest singular value (numpy.linalg.norm(ord=2)). gamma is the margin of
    ``inverse_margin`` with the same ``n``, ``batch_size`` and ``percentile``. Computed as
    sum_i 2 log ||W_i||_2 - 2 log gamma in float64 so that deep products do not overflow.
    """
    gamma = _gamma(view, n, batch_size, percentile)
    log_prod = sum(2.0 * math.log(float(np.linalg.norm(w, ord=2))) for w in view.weight_matrices())
    return float(log_prod - 2.0 * math.log(gamma))


@measure("jacobian_norm",
         source=f"Novak et al., ICLR 2018, 'Sensitivity and Generalization in Neural Networks'; {JIANG_2020} (input grad norm)",
         sign=1)
def jacobian_norm(view: ModelView, n: int | None = None, batch_size: int | None = 64) -> float:
    """Mean over the training sample of ||d logits / d x||_F^2, the input-output Jacobian (larger predicts a larger gap).

    Exact: per batch, one forward pass with the graph kept (``view.forward(x, grad=True)``) and one
    vector-Jacobian product per output class (the network is in eval mode, so each sample's logits
    depend only on its own input and the gradient of the batch sum of logit k is every sample's
    gradient of logit k). Batching the C products into one (``is_grads_batched``) was measured
    slower on a CPU thread. Parameters: ``n`` sample size (default ``view.sample_size``, the shared
    stratified sample), ``batch_size`` (default 64: smaller batches ran faster than 512 on a CPU
    thread; any size gives the same value up to float rounding).
    """
    x_all, _ = view.sample(n)
    step = batch_size or view.batch_size
    param = next(view.network.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    total = 0.0
    for start in range(0, len(x_all), step):
        x = x_all[start : start + step].to(device=view.device, dtype=dtype).clone().requires_grad_(True)
        logits = view.forward(x, grad=True, batch_size=len(x)).reshape(len(x), -1)
        for k in range(logits.shape[1]):
            (g,) = torch.autograd.grad(logits[:, k].sum(), x, retain_graph=k + 1 < logits.shape[1])
            total += float(g.to(torch.float64).square().sum())
    return total / len(x_all)
