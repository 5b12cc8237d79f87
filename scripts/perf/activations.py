"""Shared activations: five representation measures on one model versus one forward pass.

    python -m scripts.perf.activations [--samples 1000]

A model view computes a sample's hidden activations once and shares them between the measures of a
model. This times, in one process on a PGDL-task-1-shaped VGG (CIFAR-10 input, random weights and
data): one streamed forward pass over the sample capturing every hidden layer; one measure alone on a
fresh view (its forward pass included); the five measures on one shared view; and the same five
measures each on a fresh view (what recomputation would cost).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

import measures
from measures import ModelView
from task_loaders import build_network
from task_loaders.architectures import vgg

FIVE = ("channel_sparsity", "element_sparsity", "dead_units", "hoyer_sparsity", "cluster_purity")


def _view(network, x, y, samples):
    return ModelView(network, (x, y), num_classes=10, task_name="perf", sample_size=samples)


def run(samples: int = 1000, width: int = 32, depth: int = 3, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    network = build_network(vgg((32, 32, 3), 10, width=width, depth=depth), (32, 32, 3))
    x = torch.rand(samples, 3, 32, 32)
    y = torch.arange(samples) % 10

    view = _view(network, x, y, samples)
    start = time.perf_counter()
    for layer in view.hidden_layers:
        view.activations(layer)
    forward_s = time.perf_counter() - start

    start = time.perf_counter()
    measures.get(FIVE[0])(_view(network, x, y, samples))
    one_measure_s = time.perf_counter() - start

    view = _view(network, x, y, samples)
    start = time.perf_counter()
    shared_values = {name: measures.get(name)(view) for name in FIVE}
    shared_s = time.perf_counter() - start
    passes = view.forward_passes

    start = time.perf_counter()
    fresh_values = {name: measures.get(name)(_view(network, x, y, samples)) for name in FIVE}
    recompute_s = time.perf_counter() - start
    assert fresh_values == shared_values
    return {
        "samples": samples,
        "hidden_layers": len(view.hidden_layers),
        "forward_s": forward_s,
        "one_measure_s": one_measure_s,
        "five_shared_s": shared_s,
        "five_recomputed_s": recompute_s,
        "shared_forward_passes": passes,
        "shared_over_forward": shared_s / forward_s,
        "shared_over_one_measure": shared_s / one_measure_s,
        "recomputed_over_shared": recompute_s / shared_s,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    r = run(args.samples)
    print(
        f"{len(FIVE)} representation measures on one model ({r['samples']} samples, {r['hidden_layers']} hidden "
        f"layers): forward pass {r['forward_s']:.2f} s; one measure alone {r['one_measure_s']:.2f} s; five "
        f"sharing one pass ({r['shared_forward_passes']}) {r['five_shared_s']:.2f} s = "
        f"{r['shared_over_one_measure']:.2f}x one measure, {r['shared_over_forward']:.2f}x the forward pass "
        f"(target well under 5x); recomputing per measure {r['five_recomputed_s']:.2f} s "
        f"({r['recomputed_over_shared']:.1f}x slower)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0 if r["shared_over_one_measure"] < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
