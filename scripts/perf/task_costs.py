"""CPU seconds per model of every measure on each official PGDL task's architecture, and its table.

    python -m scripts.perf.task_costs [--task task1 ...] [-m NAME ...] [--cell-cap S] [--task-budget S]
                                        [--out DIR [--update]]

What is timed: for each task, a synthetic model of the task's LARGEST architecture in its grid (the
layer list built from the competition's task description, see ``TASKS``; random Keras-default
weights, a second random draw as the initial weights), on random inputs of the task's shape labelled
by the network itself (its last layer standardized so that classes come out balanced and the model
fits its labels, as PGDL's models nearly fit theirs). Each measure runs on a fresh ``ModelView`` on
one torch thread and is timed in process CPU seconds (``time.process_time``), which other jobs on
a shared machine disturb far less than wall time.

Budget: the architectures are heavy (up to 2.5 G multiply-adds per image), so each measure runs
with its sample-count parameters divided by a factor (``SCALED``: n, rounds, batches, triplets,
grid resolution, ...), and its time is multiplied by that factor: linear scaling, which is right for
forward and backward passes (nearly all of the cost) and wrong for parts superlinear in the sample
(silhouette's pairwise distances: underestimated) or fixed per call (weight SVDs: those measures
are not scaled). A measure that exceeds ``--cell-cap`` CPU seconds even scaled down, or fails on
the scaled-down sample, or comes after the task's ``--task-budget`` is spent (measures run cheapest
first), is reported "not measured", never guessed. ``--out DIR`` writes ``task_costs.json`` and
``task_costs.md``; with ``--update`` the measures and tasks timed now replace theirs in an existing
JSON and the rest is kept (rerun ``-m silhouette -m jacobian_norm`` after they change).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import measures
from measures import ModelView
from task_loaders import build_network, parameter_count
from task_loaders.architectures import nin, vgg
from task_loaders.training import keras_initialize

# -- the tasks' architectures --------------------------------------------------------------------


def _conv(filters: int, kernel: int) -> dict:
    return {"layer_name": "Conv2D", "filters": filters, "kernel_size": kernel, "padding": "same"}


def _relu(batchnorm: bool) -> list[dict]:
    return ([{"layer_name": "BatchNormalization"}] if batchnorm else []) + [{"layer_name": "Activation",
                                                                             "activation": "relu"}]


def fully_convolutional(input_shape, num_classes: int, params: float, depth: int, batchnorm: bool) -> list[dict]:
    """Tasks 4/5: ``depth`` 3x3 convs with no downsampling (filters doubling every two layers, scaled so
    that the network has about ``params`` weights), a 1x1 conv to the classes, global average pooling."""
    mult = [2 ** (i // 2) for i in range(depth)]
    # params ~ 9 * (c_in * m0 w + sum m_i m_{i+1} w^2): solve the quadratic for w
    a = 9 * sum(mult[i] * mult[i + 1] for i in range(depth - 1))
    b = 9 * input_shape[2] * mult[0]
    width = int((-b + math.sqrt(b * b + 4 * a * params)) / (2 * a))
    layers = []
    for m in mult:
        layers += [_conv(m * width, 3)] + _relu(batchnorm)
    return layers + [_conv(num_classes, 1), {"layer_name": "GlobalAveragePooling2D"}]


def nin_dense(input_shape, num_classes: int, width: int, depth: int, dense: list[int], dropout: float) -> list[dict]:
    """Task 7: NiN blocks whose global average pooling has ``dense[0]`` outputs, then the rest of the dense
    architecture (e.g. 256-256: GAP(256), Dense(256)), then the classifier."""
    layers = nin(input_shape, num_classes, width=width, depth=depth, dropout=dropout)[:-2]  # drop 1x1 + GAP
    layers += [_conv(dense[0], 1), {"layer_name": "Activation", "activation": "relu"},
               {"layer_name": "GlobalAveragePooling2D"}]
    for units in dense[1:]:
        layers += [{"layer_name": "Dense", "units": units, "activation": "relu"}]
    return layers + [{"layer_name": "Dense", "units": num_classes}]


@dataclass(frozen=True)
class TaskShape:
    """One official task: its input, classes, model count and the architectures of its grid."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    models: int
    models_note: str
    description: str
    grid: dict  # label -> layer list, one per architecture-changing grid point


def _vgg_grid(shape, classes, dense_layers=(1, 2)):
    # "last conv filters" {256, 512} x conv blocks {1, 3}: block i has last / 2**(blocks-1-i) filters
    return {f"{blocks} block(s), last conv {last}, {d} dense x128":
            vgg(shape, classes, width=last // 2 ** (blocks - 1), depth=blocks, dense_layers=d, dense_units=128,
                dropout=0.5)
            for last in (256, 512) for blocks in (1, 3) for d in dense_layers}


def _nin_grid(shape, classes, widths, depths):
    return {f"NiN {3 * depth} conv layers x {width}": nin(shape, classes, width=width, depth=depth, dropout=0.25)
            for width in widths for depth in depths}


README = "the PGDL README's hyperparameter grid (a complete grid, as the official scorer requires)"
TASKS: dict[str, TaskShape] = {t.name: t for t in (
    TaskShape("task1", (32, 32, 3), 10, 96, "documented", "VGG, CIFAR-10", _vgg_grid((32, 32, 3), 10)),
    TaskShape("task2", (32, 32, 3), 10, 54, "documented",
              "NiN, SVHN (width not documented: 256 assumed)", _nin_grid((32, 32, 3), 10, (256,), (2, 3, 4))),
    TaskShape("task4", (32, 32, 3), 10, 64, README, "fully convolutional + BatchNorm, CINIC-10",
              {f"{d} convs, {p / 1e6:g} M params": fully_convolutional((32, 32, 3), 10, p, d, True)
               for p in (1e6, 2.5e6) for d in (4, 6)}),
    TaskShape("task5", (32, 32, 3), 10, 64, README, "fully convolutional, CINIC-10",
              {f"{d} convs, {p / 1e6:g} M params": fully_convolutional((32, 32, 3), 10, p, d, False)
               for p in (1e6, 2.5e6) for d in (4, 6)}),
    TaskShape("task6", (32, 32, 3), 102, 96, README, "NiN, Oxford Flowers (102 classes)",
              _nin_grid((32, 32, 3), 102, (256, 512), (2, 3, 4))),
    TaskShape("task7", (32, 32, 4), 37, 48, README, "NiN + dense, Oxford Pets (37 classes, 4 channels)",
              {f"NiN {3 * depth} conv layers, dense {'-'.join(map(str, dense))}":
               nin_dense((32, 32, 4), 37, dense[0], depth, dense, 0.25)
               for depth in (2, 3) for dense in ([128, 128, 128], [256, 256], [512])}),
    TaskShape("task8", (28, 28, 1), 10, 32, README, "VGG, Fashion-MNIST",
              _vgg_grid((28, 28, 1), 10, dense_layers=(1,))),
    TaskShape("task9", (32, 32, 3), 10, 32, README, "NiN, CIFAR-10 with augmentation",
              _nin_grid((32, 32, 3), 10, (256, 512), (3, 4))),
)}


def multiply_adds(network: nn.Module, input_shape) -> int:
    """Multiply-adds of one forward pass of one input, counted on the convolutions and linear layers."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += output.numel() * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    h, w, c = input_shape
    with torch.inference_mode():
        network(torch.zeros(1, c, h, w))
    for handle in handles:
        handle.remove()
    return total


def largest(task: TaskShape) -> tuple[str, list[dict], int]:
    """The grid point with the most multiply-adds per input: (label, layers, multiply-adds)."""
    best = None
    for label, layers in task.grid.items():
        macs = multiply_adds(build_network(layers, task.input_shape), task.input_shape)
        if best is None or macs > best[2]:
            best = (label, layers, macs)
    return best


# -- scaling ---------------------------------------------------------------------------------------

FACTOR = 40  # the divisor of the view's default sample (1000 -> 25)
SAMPLE_SIZE = 1000  # ModelView's default sample, used by measures whose n is None
# measure -> (keyword arguments at the reduced size, the factor by which the work shrank)
SCALED: dict[str, tuple[dict, int]] = {
    **{m: ({"n": 25}, 20) for m in ("augment_margin", "conv_margin", "mixup_margin", "vpm_label_variation")},
    **{m: ({"n": 5}, 20) for m in ("sharpness", "pacbayes_sigma")},
    "dbi_first_conv": ({"rounds": 1, "samples": 24}, 50),  # work ~ rounds x samples: 10 x 120 -> 1 x 24
    "label_mixup_accuracy": ({"batches": 1, "per_class": 2}, 50),  # batches x per_class: 10 x 10 -> 1 x 2
    "dbi_times_lwm": ({"rounds": 1, "samples": 24, "batches": 1, "per_class": 2}, 50),
    # triplets x resolution^2 grid points: 20 x 24^2 -> 1 x 12^2
    "fragmentation": ({"num_triplets": 1, "resolution": 12}, 80),
    "fragmentation_hidden": ({"num_triplets": 1, "resolution": 12}, 80),
    "fragmentation_skips": ({"num_pairs": 1, "resolution": 50}, 100),  # pairs x resolution: 50 x 100 -> 1 x 50
    # its authors' 201 batches of 64 training images (each in 8 versions) -> 32 images: 12,864 / 32
    "augment_robustness": ({"n": 32, "batch_size": 32}, 402),
}
# measures of the weights alone: run at full size, factor 1
UNSCALED = {"distance_from_init", "weight_norm", "parameter_count", "vc_bound", "path_norm", "log_prod_spectral",
            "log_sum_spectral", "log_prod_frobenius", "log_sum_frobenius"}


def scaling(name: str) -> tuple[dict, int]:
    """(kwargs, factor) for a measure; measures not listed use the view's default sample (1000 -> 25)."""
    if name in UNSCALED:
        return {}, 1
    return SCALED.get(name, ({}, SAMPLE_SIZE // (SAMPLE_SIZE // FACTOR)))


@dataclass
class SyntheticModel:
    """A task's synthetic model, built and labelled once; ``view()`` gives a fresh view of a copy."""

    task: TaskShape
    network: nn.Module
    initial: nn.Module
    x: torch.Tensor
    y: torch.Tensor

    def view(self) -> ModelView:
        return ModelView(copy.deepcopy(self.network), (self.x, self.y), initial_network=copy.deepcopy(self.initial),
                         num_classes=self.task.num_classes, model_id="0", task_name=f"perf-{self.task.name}",
                         sample_size=SAMPLE_SIZE // FACTOR)


def synthetic_model(task: TaskShape, layers: list[dict], seed: int = 0) -> SyntheticModel:
    """Seeded weights (and initial weights), random inputs, labels made by the network itself: its last
    layer is standardized (logits are affine in it; global average pooling is linear too) so that the
    classes come out balanced, and the labels are its predictions, so that it fits them exactly."""
    network = build_network(layers, task.input_shape)
    keras_initialize(network, torch.Generator().manual_seed(seed))
    initial = build_network(layers, task.input_shape)
    keras_initialize(initial, torch.Generator().manual_seed(seed + 1))
    h, w, c = task.input_shape
    train = max(100, 4 * task.num_classes)  # the scaled-down samples need at most this many
    x = torch.rand(train, c, h, w, generator=torch.Generator().manual_seed(seed))
    last = [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][-1]
    with torch.inference_mode():
        logits = torch.cat([network(x[i:i + 100]) for i in range(0, train, 100)])
        mean, std = logits.mean(0), logits.std(0).clamp_min(1e-12)
        shape = (-1,) + (1,) * (last.weight.dim() - 1)
        last.weight.div_(std.view(shape))
        last.bias.sub_(mean).div_(std)
        y = ((logits - mean) / std).argmax(1)
    return SyntheticModel(task, network.eval(), initial.eval(), x, y)


class _OverCap(Exception):
    pass


def _raise_over_cap(signum, frame):
    raise _OverCap()


def time_cell(model: SyntheticModel, name: str, cap: float) -> dict:
    """One measure on one task: CPU seconds scaled down, the factor, the estimate, or why not measured."""
    kwargs, factor = scaling(name)
    view = model.view()
    previous = signal.signal(signal.SIGPROF, _raise_over_cap)
    signal.setitimer(signal.ITIMER_PROF, cap)  # counts this process's CPU time
    start = time.process_time()
    try:
        measures.get(name)(view, **kwargs)
        status = "ok"
    except _OverCap:
        status = f"not measured: over {cap:g} CPU s even scaled down by {factor}"
    except Exception as exc:  # noqa: BLE001 - reported in the table, the others still run
        status = f"not measured: {type(exc).__name__}: {str(exc)[:160]}"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    seconds = time.process_time() - start
    ok = status == "ok"
    return {"scaled_kwargs": kwargs, "factor": factor, "cpu_s_scaled": round(seconds, 3),
            "cpu_s_per_model": round(seconds * factor, 1) if ok else None, "status": status}


def cheapest_first(names: list[str]) -> list[str]:
    """Measures in the order of their cost on the task-1-sized VGG (``docs/measure_times.json``, when there),
    so that a budget runs out on the expensive ones."""
    path = Path(__file__).parents[2] / "docs" / "measure_times.json"
    try:
        seconds = {k: v["seconds"] for k, v in json.loads(path.read_text())["measures"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        seconds = {}
    return sorted(names, key=lambda n: (seconds.get(n, math.inf), n))


# -- the table -------------------------------------------------------------------------------------


def _cell(entry: dict | None) -> str:
    if entry is None:
        return ""
    if entry["cpu_s_per_model"] is None:
        return "n.m."
    return f"{entry['cpu_s_per_model']:.1f}"


def markdown_table(result: dict) -> str:
    tasks = list(result["tasks"])
    head = ["measure", *tasks]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(tasks)]
    arch = ["architecture timed"] + [
        f"{t['architecture']} ({t['params'] / 1e6:.2f} M params, {t['multiply_adds'] / 1e9:.2f} G mult-adds/image)"
        for t in result["tasks"].values()]
    lines.append("| " + " | ".join(arch) + " |")
    names = sorted({n for t in result["tasks"].values() for n in t["measures"]})
    for name in names:
        lines.append("| " + " | ".join([f"`{name}`"] + [_cell(t["measures"].get(name))
                                                        for t in result["tasks"].values()]) + " |")
    totals, hours = ["**all measured, s / model**"], ["**CPU hours per task (x models)**"]
    for t in result["tasks"].values():
        values = [e["cpu_s_per_model"] for e in t["measures"].values()]
        total = sum(v for v in values if v is not None)
        partial = any(v is None for v in values)
        totals.append(f"{'>= ' if partial else ''}{total:.0f}")
        hours.append(f"{'>= ' if partial else ''}{total * t['models'] / 3600:.1f} (x {t['models']})")
    lines.append("| " + " | ".join(totals) + " |")
    lines.append("| " + " | ".join(hours) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", choices=list(TASKS), help="a task (repeatable; default: all)")
    parser.add_argument("-m", "--measure", action="append", help="a measure (repeatable; default: all)")
    parser.add_argument("--cell-cap", type=float, default=10.0,
                        help="CPU seconds one scaled-down measure may take before it is 'not measured' (default 10)")
    parser.add_argument("--out", help="write task_costs.json and task_costs.md here")
    parser.add_argument("--update", action="store_true",
                        help="merge into an existing task_costs.json in --out (rerun some measures or tasks only)")
    parser.add_argument("--task-budget", type=float, default=150.0,
                        help="CPU seconds for one task's measures; once spent, the rest are 'not measured' (default 150)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = args.measure or measures.available()
    for name in names:
        measures.get(name)
    names = cheapest_first(names)
    result = {"threads": 1, "clock": "process CPU seconds", "torch": torch.__version__,
              "note": "largest architecture of each task's grid; sample counts divided by 'factor', time multiplied "
                      "by it", "tasks": {}}
    path = Path(args.out) / "task_costs.json" if args.out else None
    if args.update and path and path.is_file():
        result = json.loads(path.read_text())
    start = time.process_time()
    for task_name in args.task or list(TASKS):
        task = TASKS[task_name]
        label, layers, macs = largest(task)
        params = parameter_count(layers, task.input_shape)
        entry = result["tasks"].setdefault(task_name, {"measures": {}})
        entry.update({"description": task.description, "architecture": label, "layers": layers,
                      "input_shape": list(task.input_shape), "num_classes": task.num_classes, "params": params,
                      "multiply_adds": macs, "models": task.models, "models_from": task.models_note})
        print(f"{task_name}: {label}, {params / 1e6:.2f} M params, {macs / 1e9:.2f} G mult-adds/image", flush=True)
        model = synthetic_model(task, layers)
        task_start = time.process_time()
        for name in names:
            left = args.task_budget - (time.process_time() - task_start)
            if left <= 0:
                entry["measures"][name] = {**dict(zip(("scaled_kwargs", "factor"), scaling(name))), "cpu_s_scaled": 0.0,
                                           "cpu_s_per_model": None, "status": "not measured: task budget spent"}
                continue
            cell = time_cell(model, name, min(args.cell_cap, left))
            entry["measures"][name] = cell
            shown = f"{cell['cpu_s_per_model']:8.1f} s/model" if cell["status"] == "ok" else cell["status"]
            print(f"  {name:24s} {cell['cpu_s_scaled']:7.2f} s x {cell['factor']:3d}  {shown}", flush=True)
        _write(result, path)  # after each task: a run stopped later keeps what it measured
    print(f"total {time.process_time() - start:.0f} CPU s", flush=True)
    print(_write(result, path))
    return 0


def _write(result: dict, path: Path | None) -> str:
    result["tasks"] = {t: result["tasks"][t] for t in TASKS if t in result["tasks"]}
    table = markdown_table(result)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        (path.parent / "task_costs.md").write_text(table)
    return table


if __name__ == "__main__":
    sys.exit(main())
