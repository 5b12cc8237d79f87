"""Fragmentation's grid throughput (points/s, GFLOP/s) versus torch's own matrix-multiply GFLOP/s.

    python -m scripts.perf.fragmentation [--threads 1 2] [--triplets 5] [--json out.json]

On the conv-heavy PGDL-task-1-sized VGG (``vgg((32, 32, 3), 10, width=64, depth=3)`` built with
``build_network``, random Keras-default weights; the view of ``measure_times.task1_view``), for each
thread count, in this process:

* the ``fragmentation`` measure's own code path at its real settings (R = 24, padding 0.1, its
  default ``batch_size``, 64, ``view.logits`` as the classifier) on ``--triplets`` same-class triplets:
  ``triplet_fragmentation``, i.e. grid generation, the forward passes and the region counting; the
  seconds spent inside the classifier are timed apart (``forward``);
* achieved GFLOP/s = points/s x the network's forward FLOPs per point, counted exactly from the
  shapes: 2 x multiply-accumulates of every Conv2d and Linear (bias, activation and pooling not
  counted);
* torch's own GFLOP/s: best of ``--mm-repeat`` ``torch.mm`` of two 2048 x 2048 float32 matrices
  (2 x 2048^3 FLOPs), measured just before and just after, at the same thread count; the best counts;
* forward-only variants on 256 random images (best of a few): NCHW input, channels-last input (what
  the measure does), channels-last input through a channels-last copy of the model, and channels-last
  input in batches of 64 and 128 instead of 256.

The ratio is the measure's achieved GFLOP/s over the matmul GFLOP/s (target >= 0.5).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import numpy as np
import torch

import measures
from torch import nn

from measures.stats.planes import same_class_tuples, triplet_fragmentation

from .measure_times import task1_view

MM_SIZE = 2048


def forward_flops(network: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of one input (C, H, W): 2 x MACs of every Conv2d and Linear, from shapes."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs_per_output = module.in_channels // module.groups * kh * kw
            total += 2 * output[0].numel() * macs_per_output
        else:  # Linear, applied to every position of its input's leading axes
            total += 2 * (output[0].numel() // module.out_features) * module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            network(torch.zeros((1,) + tuple(input_shape)))
    finally:
        for h in hooks:
            h.remove()
    return total


VARIANT_IMAGES = 256  # forward-only variants: this many images, in batches of 256, 128 and 64


def matmul_gflops(size: int = MM_SIZE, repeat: int = 10) -> float:
    """Best GFLOP/s of ``repeat`` float32 ``torch.mm`` of two size x size matrices (after one warm-up)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(size, size, generator=gen), torch.rand(size, size, generator=gen)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


class TimedClassifier:
    """Wraps a classifier, adding up the seconds spent in it and the points it classified."""

    def __init__(self, classify):
        self.classify, self.seconds, self.points = classify, 0.0, 0

    def __call__(self, points):
        start = time.perf_counter()
        logits = self.classify(points)
        self.seconds += time.perf_counter() - start
        self.points += len(points)
        return logits


def forward_variants(network: nn.Module, batch: int, repeat: int, sweep=(64, 128)) -> dict[str, float]:
    """Forward-only points/s on ``batch`` random images: NCHW input, channels-last input (the measure's
    layout), channels-last input and model; and channels-last input in smaller batches (``sweep``)."""
    x = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    x_last = x.contiguous(memory_format=torch.channels_last)
    model_last = copy.deepcopy(network).to(memory_format=torch.channels_last)
    cases = {"nchw_input": (network, x, batch), "channels_last_input": (network, x_last, batch),
             "channels_last_input_and_model": (model_last, x_last, batch)}
    cases.update({f"channels_last_input_batch_{b}": (network, x_last, b) for b in sweep if b < batch})
    best = dict.fromkeys(cases, float("inf"))
    with torch.inference_mode():
        for model, inp, size in cases.values():
            model(inp[:size])  # warm-up: oneDNN builds its primitives on the first call of a shape
        for _ in range(repeat):  # interleaved, so a burst of load elsewhere hits every variant alike
            for name, (model, inp, size) in cases.items():
                start = time.perf_counter()
                for s in range(0, batch, size):
                    model(inp[s : s + size])
                best[name] = min(best[name], time.perf_counter() - start)
    return {name: batch / s for name, s in best.items()}


def run_threads(view, threads: int, num_triplets: int, resolution: int, batch_size: int, mm_repeat: int,
                variant_repeat: int, flops: int) -> dict:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        mm_before = matmul_gflops(repeat=mm_repeat)
        index = same_class_tuples(view.y_train.numpy(), num_triplets, view.rng("fragmentation"), size=3)
        triplets = view.x_train[torch.as_tensor(index)]
        classifier = TimedClassifier(view.forward)
        with torch.inference_mode():  # warm-up batch of the measure's shape
            view.forward(torch.rand(batch_size, 3, 32, 32).contiguous(memory_format=torch.channels_last))
        start = time.perf_counter()
        values = triplet_fragmentation(classifier, triplets, resolution=resolution, padding=0.1,
                                       batch_size=batch_size)
        total_s = time.perf_counter() - start
        variants = forward_variants(view.network, VARIANT_IMAGES, variant_repeat) if variant_repeat else {}
        mm_after = matmul_gflops(repeat=mm_repeat)
    finally:
        torch.set_num_threads(previous)
    points = classifier.points
    mm = max(mm_before, mm_after)
    gflops = points / total_s * flops / 1e9
    return {
        "threads": threads,
        "points": points,
        "triplets": num_triplets,
        "mean_regions": float(np.nanmean(values)),
        "measure_s": total_s,
        "forward_s": classifier.seconds,
        "overhead_s": total_s - classifier.seconds,
        "points_per_s": points / total_s,
        "forward_points_per_s": points / classifier.seconds,
        "gflops": gflops,
        "forward_gflops": points / classifier.seconds * flops / 1e9,
        "matmul_gflops": mm,
        "matmul_gflops_before": mm_before,
        "matmul_gflops_after": mm_after,
        "ratio": gflops / mm,
        "forward_ratio": points / classifier.seconds * flops / 1e9 / mm,
        "variants_points_per_s": variants,
        "variants_ratio": {k: v * flops / 1e9 / mm for k, v in variants.items()},
    }


def run(threads=(1, 2), num_triplets: int = 5, train: int = 300, resolution: int = 24, batch_size: int | None = None,
        mm_repeat: int = 10, variant_repeat: int = 3) -> dict:
    if batch_size is None:
        batch_size = measures.get("fragmentation").params["batch_size"]
    view = task1_view(train)
    flops = forward_flops(view.network, (3, 32, 32))
    params = sum(p.numel() for p in view.network.parameters())
    per_threads = [run_threads(view, t, num_triplets, resolution, batch_size, mm_repeat, variant_repeat, flops)
                   for t in threads]
    return {
        "network": "vgg((32, 32, 3), 10, width=64, depth=3)",
        "parameters": params,
        "flops_per_point": flops,
        "resolution": resolution,
        "batch_size": batch_size,
        "matmul": f"best of {mm_repeat} torch.mm {MM_SIZE}x{MM_SIZE} float32, before and after",
        "by_threads": per_threads,
    }


def summary(r: dict) -> str:
    lines = [f"fragmentation on {r['network']} ({r['flops_per_point'] / 1e9:.3f} GFLOP per point, R = "
             f"{r['resolution']}, batch {r['batch_size']}):"]
    for t in r["by_threads"]:
        lines.append(
            f"  {t['threads']} thread(s): {t['points_per_s']:.0f} points/s = {t['gflops']:.1f} GFLOP/s "
            f"(forward passes alone {t['forward_points_per_s']:.0f} points/s); torch.mm {t['matmul_gflops']:.1f} "
            f"GFLOP/s; ratio {t['ratio']:.2f} (target >= 0.5)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--triplets", type=int, default=5, help="triplets (576 grid points each; default 5)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the measure's default (64)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    r = run(tuple(args.threads), args.triplets, batch_size=args.batch_size)
    print(summary(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0 if all(t["ratio"] >= 0.5 for t in r["by_threads"]) else 1


if __name__ == "__main__":
    sys.exit(main())
