"""Two measures as a plugin file: `pgdl-bench score --plugin docs/examples/plugin/my_measures.py`."""

import torch

from measures import measure
from row_norms import mean_row_norm  # a helper module beside this file


@measure("logit_norm", source="a five-minute example", sign=1)
def logit_norm(view, n: int = 500) -> float:
    """Mean L2 norm of the logits on a class-stratified training sample (larger predicts a larger gap)."""
    x, _ = view.sample(n)
    return mean_row_norm(view.forward(x))


@measure("input_gradient_norm")
def input_gradient_norm(view, n: int = 200) -> float:
    """Mean L2 norm of d logit[true class] / d input over a training sample."""
    x, y = view.sample(n)
    x = x.to(view.device).requires_grad_(True)
    true_logit = view.forward(x, grad=True).gather(1, y.to(view.device)[:, None]).sum()
    (gradient,) = torch.autograd.grad(true_logit, x)
    return mean_row_norm(gradient)
