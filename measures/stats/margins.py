"""Output margins of logits and the margin scale gamma of Jiang et al. (ICLR 2020), on arrays and tensors.

Used by the margins family (``measures.families.margins``), whose docstring gives the conventions.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def output_margin(logits, labels) -> np.ndarray:
    """Per-sample output margins: logit of the true class minus the largest other logit (float64).

    ``logits``: (N, C) array or tensor; ``labels``: (N,) integer class indices. Negative for a
    misclassified sample, 0 on a tie between the true class and another.
    """
    z = torch.as_tensor(logits).detach().cpu().to(torch.float64)
    y = torch.as_tensor(labels).detach().cpu().long()
    if z.dim() != 2 or z.shape[1] < 2:
        raise ValueError(f"output_margin needs (N, C) logits with C >= 2, got shape {tuple(z.shape)}")
    true = z.gather(1, y[:, None]).squeeze(1)
    others = z.clone()
    others.scatter_(1, y[:, None], -math.inf)
    return (true - others.max(dim=1).values).numpy()


def margin_gamma(margins: np.ndarray, percentile: float = 10.0) -> float:
    """gamma: the ``percentile``-th percentile of ``margins``, or of the positive ones when that is <= 0.

    ValueError when no margin is positive (no sample classified correctly): gamma is then undefined.
    """
    margins = np.asarray(margins, dtype=np.float64)
    gamma = float(np.percentile(margins, percentile))
    if gamma > 0:
        return gamma
    correct = margins[margins > 0]
    if correct.size == 0:
        raise ValueError("no sample is classified correctly, the output margin is undefined")
    return float(np.percentile(correct, percentile))


def kth_smallest_margin(margins, percent: int = 10) -> float:
    """The k-th smallest of ``margins`` (1-based), k = floor(N * percent / 100) but at least 1 (float64).

    The margin of the robust-evaluation reference code (``kthvalue(m // 10)`` for ``percent=10``): an
    order statistic, not the interpolated ``numpy.percentile`` of ``margin_gamma``, and without its
    fallback to the correctly classified samples (the value may be <= 0).
    """
    margins = np.asarray(margins, dtype=np.float64).ravel()
    if margins.size == 0:
        raise ValueError("no margins to take an order statistic of")
    k = max(margins.size * int(percent) // 100, 1)
    return float(np.partition(margins, k - 1)[k - 1])
