"""Training a network built from a PGDL layer list, deterministically, as the PGDL zoos were trained.

SGD with momentum and a step learning-rate schedule; L2 weight decay on conv and dense kernels as
Keras' ``kernel_regularizer=l2(wd)`` adds it (loss + wd * sum(W^2), so the gradient gains 2 * wd * W;
biases and BatchNorm parameters are not decayed). Weights start from Keras' defaults: Glorot-uniform
kernels, zero biases, BatchNorm gamma 1 and beta 0. Every random draw (initialization, shuffling,
dropout) comes from the model's seed, and algorithms are forced deterministic, so the same recipe and
seed give bit-identical weights on the same machine and thread count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .keras_layers import BatchNormalization, Conv2D, Dense, KerasSequential


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay: float = 0.1
    lr_milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of training after which lr *= lr_decay
    seed: int = 0


def keras_initialize(network: KerasSequential, generator: torch.Generator) -> None:
    """Keras' default initialization: Glorot-uniform kernels, zero biases, BatchNorm identity."""
    with torch.no_grad():
        for module in network.children():
            if isinstance(module, (Conv2D, Dense)):
                weight = module.conv.weight if isinstance(module, Conv2D) else module.linear.weight
                receptive = weight[0, 0].numel() if weight.dim() == 4 else 1
                fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
                limit = math.sqrt(6.0 / (fan_in + fan_out))
                weight.copy_(torch.rand(weight.shape, generator=generator) * (2 * limit) - limit)
                bias = module.conv.bias if isinstance(module, Conv2D) else module.linear.bias
                if bias is not None:
                    bias.zero_()
            elif isinstance(module, BatchNormalization):
                for tensor, value in ((module.gamma, 1.0), (module.beta, 0.0), (module.moving_mean, 0.0),
                                      (module.moving_variance, 1.0)):
                    if tensor is not None:
                        tensor.fill_(value)


def _param_groups(network: KerasSequential, weight_decay: float) -> list[dict]:
    kernels, others = [], []
    for module in network.children():
        for name, param in module.named_parameters():
            is_kernel = isinstance(module, (Conv2D, Dense)) and name.endswith("weight")
            (kernels if is_kernel else others).append(param)
    return [{"params": kernels, "weight_decay": 2.0 * weight_decay}, {"params": others, "weight_decay": 0.0}]


def train_network(
    network: KerasSequential,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    on_epoch: Callable[[int, float], None] | None = None,
) -> KerasSequential:
    """Train in place with minibatch SGD; returns the network in eval mode."""
    generator = torch.Generator().manual_seed(config.seed)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        optimizer = torch.optim.SGD(_param_groups(network, config.weight_decay), lr=config.learning_rate,
                                    momentum=config.momentum)
        milestones = sorted({max(1, round(f * config.epochs)) for f in config.lr_milestones})
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=config.lr_decay)
        n = len(y)
        for epoch in range(config.epochs):
            network.train()
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, config.batch_size):
                index = order[start : start + config.batch_size]
                if len(index) < 2 and any(isinstance(m, BatchNormalization) for m in network.children()):
                    continue  # a batch of one has no batch statistics
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))  # dropout masks
                    loss = F.cross_entropy(network(x[index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(index)
            schedule.step()
            if on_epoch is not None:
                on_epoch(epoch, total / n)
    finally:
        torch.use_deterministic_algorithms(previous)
    return network.eval()


@torch.inference_mode()
def per_sample_correct(network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024):
    """Whether the argmax prediction of each sample is its label: a bool numpy array (N,), in input order."""
    network.eval()
    parts = [(network(x[start : start + batch_size]).argmax(1) == y[start : start + batch_size])
             for start in range(0, len(y), batch_size)]
    return torch.cat(parts).numpy() if parts else torch.zeros(0, dtype=torch.bool).numpy()


def accuracy(network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Exact fraction of correct argmax predictions (count / N)."""
    return int(per_sample_correct(network, x, y, batch_size).sum()) / len(y)
