"""Cost probe for the next default suite: training seconds of one model and scoring seconds of every
measure on it, for a VGG-like and a Network-in-Network-like candidate with and without BatchNorm on
Fashion-MNIST, then the extrapolation to 4 zoos x N models (docs/power_analysis.md, "Cost").

``nice -n 10 python -m scripts.zoo_cost_probe [--train 1000] [--epochs 1] [--size 28] [--models 108 162 243]
[--json FILE]``

One torch thread throughout (as zoo training and a score run's worker). Training: one model per
candidate (the costliest grid point: the widest, deepest network at the smallest batch), ``--epochs``
epochs on ``--train`` stratified Fashion-MNIST images (``--size`` < 28: average-pooled to that
resolution), timed as process CPU seconds and scaled linearly to the suite's recipe (``SUITE_TRAIN``
images x ``SUITE_EPOCHS`` epochs). Scoring: one ``ModelView`` of the trained network on its training
images, the shared activations pass timed once, then every registered measure on the same view (a
score run's protocol), CPU seconds. The cold main job's time = models x (pass + sum of measures) / 2
cores, against the 15-minute target.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

import measures
from measures import ModelView
from task_loaders import build_network
from task_loaders.datasets import load_dataset
from task_loaders.training import keras_initialize, train_network
from task_loaders.zoo import Recipe

SUITE_TRAIN, SUITE_EPOCHS = 2000, 20  # the fashion recipe's train size and epochs
TARGET_S, CORES = 15 * 60, 2
CANDIDATES = {  # the costliest point of each candidate grid
    "vgg": {"convwidth": 16, "depth": 3, "dropout": 0.5, "weight_decay": 0.0005, "batch_size": 32,
            "learning_rate": 0.02},
    "nin": {"convwidth": 32, "depth": 3, "dropout": 0.5, "weight_decay": 0.0005, "batch_size": 32,
            "learning_rate": 0.02},
}


def _timed(fn):
    cpu = time.process_time()
    try:
        value, error = fn(), None
    except Exception as exc:  # report and go on timing the others
        value, error = None, f"{type(exc).__name__}: {exc}"
    return time.process_time() - cpu, value, error


def probe(train: int, epochs: int, size: int, names: list[str], log=print) -> dict:
    data = load_dataset("fashion-mnist").subset(train, 500, seed=0)
    x, y = data.x_train, data.y_train
    if size < x.shape[-1]:
        x = F.adaptive_avg_pool2d(x, size)
    input_shape = (x.shape[2], x.shape[3], x.shape[1])
    out = {}
    warm = build_network(Recipe("warm-up", "", "fashion-mnist", "vgg", grid=(), epochs=1).layers({}, input_shape, 10),
                         input_shape)
    train_network(warm, x[:64], y[:64], Recipe("warm-up", "", "fashion-mnist", "vgg", grid=(), epochs=1).train_config({}))
    for arch, hparams in CANDIDATES.items():
        for bn in (True, False):
            label = f"{arch}-{'bn' if bn else 'nobn'}"
            recipe = Recipe(label, "cost probe", "fashion-mnist", arch, grid=(), epochs=epochs,
                            fixed=tuple({**hparams, "batchnorm": bn}.items()))
            layers = recipe.layers({}, input_shape, 10)
            network = build_network(layers, input_shape)
            keras_initialize(network, torch.Generator().manual_seed(0))
            initial = build_network(layers, input_shape)
            initial.load_state_dict(network.state_dict())
            cpu, _, error = _timed(lambda: train_network(network, x, y, recipe.train_config({})))
            if error:
                raise RuntimeError(f"{label}: training failed: {error}")
            train_s = cpu / (epochs * train) * SUITE_EPOCHS * SUITE_TRAIN
            view = ModelView(network, (x, y), initial_network=initial, num_classes=10, model_id=label,
                             task_name="cost-probe")
            shared, _, _ = _timed(lambda: [view.activations(layer) for layer in [*view.hidden_layers, "logits"]])
            times, errors = {}, {}
            for name in names:
                seconds, _, error = _timed(lambda: measures.get(name)(view))
                times[name] = round(seconds, 3)
                if error:
                    errors[name] = error
            total = shared + sum(times.values())
            out[label] = {"train_cpu_s_probe": round(cpu, 2), "train_cpu_s_suite_model": round(train_s, 1),
                          "shared_pass_s": round(shared, 3), "measures_s": times, "errors": errors,
                          "score_s_per_model": round(total, 2)}
            ranked = sorted(times.items(), key=lambda kv: kv[1])
            log(f"{label}: train {cpu:.1f} s for {epochs} epoch(s) of {train} -> {train_s:.0f} s per suite model; "
                f"score {total:.1f} s/model (pass {shared:.2f}); cheapest {ranked[0]}, costliest {ranked[-3:]}"
                + (f"; errors: {errors}" if errors else ""))
    return out


def extrapolate(result: dict, models: list[int]) -> list[dict]:
    """4 zoos (the four candidates) x N models: training CPU-hours, the cold main job on 2 cores."""
    per_model_train = sum(r["train_cpu_s_suite_model"] for r in result.values())  # one model of each zoo
    per_model_score = sum(r["score_s_per_model"] for r in result.values())
    rows = []
    for n in models:
        job = n * per_model_score / CORES
        rows.append({"models_per_zoo": n, "train_cpu_hours": round(n * per_model_train / 3600, 2),
                     "main_job_minutes_2_cores": round(job / 60, 1), "over_target": round(job / TARGET_S, 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.zoo_cost_probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=1000, help="training images of the probe (default 1000)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs of the probe (default 1)")
    parser.add_argument("--size", type=int, default=28, help="image side (28: full resolution)")
    parser.add_argument("--models", type=int, nargs="+", default=[108, 162, 243], help="models per zoo")
    parser.add_argument("-m", "--measure", action="append", help="time only these measures (default: all)")
    parser.add_argument("--json", help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = args.measure or sorted(measures.available())
    result = probe(args.train, args.epochs, args.size, names)
    rows = extrapolate(result, args.models)
    for row in rows:
        print(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"probe": result, "extrapolation": rows, "train": args.train, "epochs": args.epochs,
                       "size": args.size, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "suite_train": SUITE_TRAIN, "suite_epochs": SUITE_EPOCHS}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
