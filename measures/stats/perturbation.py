"""The PAC-Bayes sigma search and bounds of the robust-evaluation reference code, on modules and tensors.

Dziugaite et al., NeurIPS 2020 ("In search of robust measures of generalization"; code
github.com/nitarshan/robust-generalization-measures, ``data/generation/measures.py``) compute Jiang et
al.'s PAC-Bayes measures with the search defined here; ``measures.families.reference`` registers them.
Conventions of that code, kept here:

* Noise. Each draw adds to every parameter p of the network (kernels, biases, BatchNorm gamma and
  beta; never a buffer) a Gaussian of standard deviation sigma^2 (plain search) or
  sigma^2 * |p|^2 + eps^2 (magnitude-aware search): the reference passes these to ``torch.normal``
  as its ``std`` argument, so the "sigma" it searches is the square root of the noise's standard
  deviation. The draws come from one ``torch.Generator`` (CPU, float32) in the order of
  ``network.parameters()``, draw after draw, trial after trial.
* Search. Bisection of sigma on [0, 2], starting at 1, for ``depth`` trials; a trial estimates the
  mean accuracy over ``draws`` perturbed networks and stops the search when the accuracy drop
  d = |mean - accuracy| is within ``tolerance`` of ``target`` (returning that sigma); otherwise sigma
  goes down when d > target and up when it is below. The returned sigma is the last one tried.
* Exact shortcut (not in the reference, same result): a trial's perturbed networks stop being
  evaluated once the correct counts seen so far decide which of the three outcomes the trial has
  (every possible remaining count gives the same outcome); the noise of the skipped evaluations is
  still drawn, so the generator's stream, and every later trial, stays the reference's.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _outcome(drop: float, target: float, tolerance: float) -> int:
    """-1: sigma goes up (too little drop), 0: stop, +1: sigma goes down (too much), as the reference decides."""
    if abs(drop - target) < tolerance:
        return 0
    return 1 if drop > target else -1


def _outcome_range(correct: int, remaining: int, total: int, accuracy: float, target: float,
                   tolerance: float) -> int | None:
    """The outcome when every possible final mean accuracy gives the same one, else None."""
    low, high = correct / total, (correct + remaining) / total
    drops = (abs(low - accuracy), abs(high - accuracy))
    smallest = 0.0 if low <= accuracy <= high else min(drops)
    first, last = _outcome(smallest, target, tolerance), _outcome(max(drops), target, tolerance)
    return first if first == last else None  # the outcome is monotone in the drop


def reference_noise(params: list[torch.Tensor], sigma: float, generator: torch.Generator,
                    magnitude_eps: float | None = None) -> list[torch.Tensor]:
    """One draw of the reference's noise for ``params`` (CPU float32 tensors), in their order (module docstring)."""
    if magnitude_eps is None:
        # drawn on the CPU, whatever the device, so that every device draws the same noise
        return [torch.normal(0.0, sigma**2, tuple(p.shape), generator=generator, device="cpu") for p in params]
    # torch.normal(0, std) draws std * N(0, 1) this way, bit for bit (checked), here on the CPU like the above
    stds = [(sigma**2 * torch.abs(p) ** 2 + magnitude_eps**2).cpu() for p in params]
    return [torch.empty_like(s).normal_(0.0, 1.0, generator=generator) * s for s in stds]


@torch.inference_mode(False)
def reference_sigma(network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, accuracy: float,
                    generator: torch.Generator, *, magnitude_eps: float | None = None, depth: int = 15,
                    draws: int = 10, target: float = 0.1, tolerance: float = 1e-2,
                    batch_size: int = 500) -> float:
    """The sigma of the reference's PAC-Bayes search on ``network`` (not modified) and samples (x, y).

    ``accuracy``: the unperturbed accuracy the drop is measured from; ``generator`` the stream of the
    noise (module docstring); ``magnitude_eps``: None for the plain search, eps for the
    magnitude-aware one; ``depth`` trials at most, ``draws`` perturbed networks per trial, ``target``
    and ``tolerance`` the accuracy drop sought. ``x`` and ``y`` are moved to the network's device.
    """
    params = list(network.parameters())
    if not params:
        raise ValueError("the network has no parameters to perturb")
    device = params[0].device
    base = [p.detach().clone() for p in params]
    base_cpu = [b.to("cpu", torch.float32) for b in base]
    x = x.to(device=device, dtype=base[0].dtype)
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    y = y.to(device)
    n = len(y)
    total = draws * n
    lower, upper, sigma = 0.0, 2.0, 1.0
    with torch.no_grad():
        for _ in range(int(depth)):
            sigma = (lower + upper) / 2
            correct, seen, outcome = 0, 0, None
            for _draw in range(int(draws)):
                noise = reference_noise(base_cpu, sigma, generator, magnitude_eps)
                if outcome is not None:
                    continue  # decided: the noise is drawn only to keep the stream
                for p, b, e in zip(params, base, noise):
                    p.copy_(b + e.to(device=device, dtype=b.dtype))
                for start in range(0, n, batch_size):
                    pred = network(x[start : start + batch_size]).argmax(1)
                    correct += int((pred == y[start : start + batch_size]).sum())
                    seen += len(pred)
                    outcome = _outcome_range(correct, total - seen, total, accuracy, target, tolerance)
                    if outcome is not None:
                        break
            if outcome is None:
                outcome = _outcome(abs(correct / total - accuracy), target, tolerance)
            if outcome == 0:
                break
            if outcome > 0:
                upper = sigma
            else:
                lower = sigma
        for p, b in zip(params, base):
            p.copy_(b)
    return float(sigma)


def pacbayes_bound(vector: np.ndarray, sigma: float, m: int) -> float:
    """||v||^2 / (4 sigma^2) + log(m / sigma) + 10: the reference's PAC-Bayes bound around v (w or w - w0)."""
    v = np.asarray(vector, dtype=np.float64)
    return float(np.dot(v, v) / (4 * sigma**2) + math.log(m / sigma) + 10)


def pacbayes_magnitude_bound(vector: np.ndarray, distance: np.ndarray, sigma: float, eps: float, m: int) -> float:
    """The reference's magnitude-aware bound: 1/4 sum_i log(num / den_i) + log(m / sigma) + 10.

    num = eps^2 + (sigma^2 + 1) ||v||^2 / omega (omega the number of weights), den_i = eps^2 +
    sigma^2 (w_i - w0_i)^2: the denominator reads ``distance`` = w - w0 for both v = w - w0 and v = w.
    """
    v = np.asarray(vector, dtype=np.float64)
    d = np.asarray(distance, dtype=np.float64)
    numerator = eps**2 + (sigma**2 + 1) * np.dot(v, v) / v.size
    denominator = eps**2 + sigma**2 * d**2
    return float(0.25 * np.sum(np.log(numerator / denominator)) + math.log(m / sigma) + 10)
