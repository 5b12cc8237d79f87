"""k-variance and gradient-normalized margins (Chuang et al., NeurIPS 2021), on arrays, tensors and networks.

Used by the kV-margin family (``measures.families.kv_margins``), whose docstring gives the conventions.

- ``uniform_w1``: the exact 1-Wasserstein distance between two equal-size uniform samples;
- ``half_split_w1``: the k-variance estimate of one class, W1 between the two halves of a sample;
- ``authors_draws``: the sample and the per-class orders the authors' numpy code draws under a seed;
- ``runner_up``, ``margins_and_gradient_norms``: the output margin, and the norm of the gradient of
  the margin's two logits' difference with respect to a hidden representation.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from .margins import output_margin


def uniform_w1(a, b) -> float:
    """W1 between the uniform measures on the rows of ``a`` and ``b`` (as many rows each), Euclidean cost.

    With k points on each side and mass 1/k on each point, every vertex of the transport polytope is a
    permutation matrix / k (Birkhoff), so the optimal transport cost is the optimal assignment's mean
    cost: ``scipy.optimize.linear_sum_assignment`` on the k x k matrix of Euclidean distances
    (``scipy.spatial.distance.cdist``, float64) solves it exactly, with no extra dependency. POT's
    ``ot.emd2(1/k, 1/k, M)``, which the authors call, reaches the same optimum (the network simplex ends
    on such a vertex); the two differ only by float rounding (``tests/test_kv_margins.py`` checks it).
    Rows are flattened: ``a`` and ``b`` are (k, ...) arrays or tensors.
    """
    a = _rows(a)
    b = _rows(b)
    if a.shape != b.shape:
        raise ValueError(f"uniform_w1 needs two samples of the same shape, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("uniform_w1 needs at least one point on each side")
    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def half_split_w1(features) -> float:
    """W1 between the first k and the next k rows of ``features`` (k = half the rows, rounded down;
    an odd last row is left out): the authors' one-draw estimate of a class's k-variance."""
    x = _rows(features)
    k = len(x) // 2
    if k == 0:
        raise ValueError(f"the k-variance needs at least 2 samples, got {len(x)}")
    return uniform_w1(x[:k], x[k : 2 * k])


def _rows(x) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return x.reshape(len(x), int(np.prod(x.shape[1:]))).astype(np.float64)


def authors_draws(labels, per_class: int = 200, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """What the authors' ``complexity`` draws after ``np.random.seed(seed)``: (sample, per-class orders).

    ``labels``: the training split's labels (non-negative integers) in its stored order. The sample is
    ``min(N, C * per_class)`` indices into the split (C = the largest label + 1) drawn without
    replacement (numpy's legacy ``choice(..., replace=False)``: the first draws of a permutation of
    the split); then, for each class c = 0 ... C-1 in turn, a permutation of the positions (into the
    sample) of the sampled members of class c. numpy's legacy generator (``RandomState``) gives those
    draws exactly, as ``np.random`` does after ``np.random.seed``; no global state is touched.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError("authors_draws needs a non-empty 1-D array of non-negative integer labels")
    if isinstance(per_class, bool) or int(per_class) != per_class or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    generator = np.random.RandomState(int(seed))
    classes = int(labels.max()) + 1
    size = min(len(labels), classes * int(per_class))
    sample = generator.choice(np.arange(len(labels)), size, replace=False)
    drawn = labels[sample]
    orders = [generator.permutation(np.flatnonzero(drawn == c)) for c in range(classes)]
    return sample, orders


def runner_up(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per sample, the class of the largest logit other than the true one (the first on a tie)."""
    masked = logits.detach().clone()
    masked.scatter_(1, labels.view(-1, 1).to(masked.device), -torch.inf)
    return masked.argmax(dim=1)


def margins_and_gradient_norms(head: Callable[[torch.Tensor], torch.Tensor], features: torch.Tensor,
                               labels) -> tuple[np.ndarray, np.ndarray]:
    """(output margins, ||d(f_y - f_j)/dh||_2) per sample, h = ``features``, j = ``runner_up``, f = ``head(h)``.

    ``head`` maps a batch of hidden representations to logits; each sample's logits must depend on its
    own representation only (a network in eval mode), so one backward pass of the batch sum of
    f_y - f_j gives every sample's gradient. Both arrays are float64, of one value per sample.
    """
    h = features.detach().clone().requires_grad_(True)
    y = torch.as_tensor(labels, device=h.device).long().view(-1, 1)
    logits = head(h)
    if logits.dim() != 2 or logits.shape[0] != len(h):
        raise ValueError(f"the head must map {len(h)} representations to (N, C) logits, got {tuple(logits.shape)}")
    rival = runner_up(logits, y).view(-1, 1)
    difference = logits.gather(1, y) - logits.gather(1, rival)
    (gradient,) = torch.autograd.grad(difference.sum(), h)
    norms = gradient.detach().to(torch.float64).flatten(1).norm(dim=1).cpu().numpy()
    return output_margin(logits.detach(), y.view(-1)), norms
