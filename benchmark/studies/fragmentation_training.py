"""``study fragmentation-training``: fragmentation and validation error through training.

Mouton et al. (arXiv 2411.04695) report that fragmentation follows the trends of the validation error
throughout training. A few models of a zoo recipe (at evenly spaced quantiles of the gap) are trained
again exactly as the zoo trained them (same code, seed and single thread), keeping the weights at
initialization and after every epoch; the last checkpoint reproduces the zoo's model (the report gives
the largest weight difference). At every checkpoint: validation error (the zoo's held-out test split),
training error, and fragmentation in input space and at the middle hidden layer, on the same triplets
throughout (the triplets depend on the task and model only). Per model: Spearman's rank correlation
between fragmentation and validation error over the checkpoints.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from task_loaders.training import keras_initialize, train_network
from task_loaders.zoo import bench_home, get_recipe

from ..running.executor import Emitter, Job
from ..running.store import task_fingerprint
from .common import Item, Report, StudyError, StudyRun, cached_task, pyplot, spearman
from .fragmentation_weight_norm import spread_models

NAME = "fragmentation-training"
HELP = "fragmentation and validation error at checkpoints through training, and their rank correlation"
SERIES = ("test_error", "train_error", "fragmentation", "fragmentation_hidden")


@dataclass(frozen=True)
class Recipe:
    zoo: str
    models: int
    resolution: int
    triplets: int


RECIPES = {"full": Recipe("mnist-nobn", 4, 24, 20), "small": Recipe("mnist-tiny", 2, 8, 4)}


def checkpoint_file(task, model_id: str) -> Path:
    return bench_home() / "studies" / "checkpoints" / task_fingerprint(task) / f"model_{model_id}.pt"


def train_job(emit: Emitter, task_path: str, recipe: str, model_id: str, path: str) -> None:
    """Job function: retrain one zoo model, saving its weights at initialization and after each epoch."""
    emit.run("train", lambda: _train(cached_task(task_path), get_recipe(recipe), model_id, Path(path)))


def _train(task, recipe, model_id: str, path: Path) -> int:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the zoo trained it: the same weights, bit for bit
    try:
        return _train_one_thread(task, recipe, model_id, path)
    finally:
        torch.set_num_threads(threads)


def _train_one_thread(task, recipe, model_id: str, path: Path) -> int:
    config = recipe.train_config(dict(recipe.models())[model_id])
    network = task.build_network(model_id)
    keras_initialize(network, torch.Generator().manual_seed(config.seed))
    states = [_copy(network)]
    train_network(network, *task.train_split(), config, on_epoch=lambda epoch, loss: states.append(_copy(network)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(states, tmp)
    os.replace(tmp, path)  # a checkpoint file appears only complete
    return len(states)


def _copy(network) -> dict:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


_STATES: dict[str, list] = {}


def checkpoint_network(task, model_id: str, path: str, index: int):
    """The network of one model at checkpoint ``index`` (0 = initialization, e = after epoch e)."""
    if path not in _STATES:
        _STATES.clear()
        _STATES[path] = torch.load(path)
    network = task.build_network(model_id)
    network.load_state_dict(_STATES[path][index])
    return network.eval()


def _ensure_checkpoints(study: StudyRun, task, recipe: Recipe, models: list[str]) -> dict[str, Path]:
    zoo_recipe = get_recipe(recipe.zoo)
    files = {m: checkpoint_file(task, m) for m in models}
    jobs = [Job(key=m, fn=train_job, parts=("train",), kwargs=dict(task_path=str(Path(task.path).resolve()),
                recipe=zoo_recipe.name, model_id=m, path=str(path)))
            for m, path in files.items() if not path.is_file()]
    failures = []
    bar = tqdm(total=len(models), initial=len(models) - len(jobs), desc=f"{study.name}: training", unit="model",
               disable=not study.progress)

    def on_result(result) -> None:
        bar.update(1)
        if not result.ok:
            failures.append(result)

    try:
        if jobs:
            study.executor().run(jobs, on_result)
    finally:
        bar.close()
    if failures:
        raise StudyError(f"study {study.name}: training model {failures[0].job} failed: {failures[0].error}")
    return files


def run(study: StudyRun, data: str | None = None) -> Report:
    recipe = RECIPES[study.recipe]
    task = study.zoo(recipe.zoo, data)
    models = spread_models(task, recipe.models)
    files = _ensure_checkpoints(study, task, recipe, models)
    epochs = get_recipe(recipe.zoo).epochs
    frag = {"resolution": recipe.resolution, "num_triplets": recipe.triplets}
    parts = {"test_error": ("test_error", {}), "train_error": ("train_error", {}),
             "fragmentation": ("fragmentation", frag), "fragmentation_hidden": ("fragmentation_hidden", frag)}
    items = [Item(f"model_{m}@epoch{e}", m, parts, "benchmark.studies.fragmentation_training:checkpoint_network",
                  {"path": str(files[m]), "index": e}) for m in models for e in range(epochs + 1)]
    values = study.compute(task, items, "checkpoints", undefined=("fragmentation_hidden",))
    curves = {}
    late = (epochs + 1) // 3
    for m in models:
        series = {q: [values[(f"model_{m}@epoch{e}", q)] for e in range(epochs + 1)] for q in SERIES}
        final = torch.load(files[m])[-1]
        zoo_state = task.load_model(m).network.state_dict()
        drift = max(float((final[k] - zoo_state[k]).abs().max()) for k in final)
        curves[f"model_{m}"] = {
            "hparams": task.hparams(m), "gap": task.gap(m), "epochs": list(range(epochs + 1)), **series,
            "spearman_fragmentation": _defined_spearman(series["fragmentation"], series["test_error"]),
            "spearman_fragmentation_hidden": _defined_spearman(series["fragmentation_hidden"], series["test_error"]),
            # without the first third of training, where both fall together from their initial values
            "late_from_epoch": late,
            "spearman_fragmentation_late": _defined_spearman(series["fragmentation"][late:],
                                                             series["test_error"][late:]),
            "spearman_fragmentation_hidden_late": _defined_spearman(series["fragmentation_hidden"][late:],
                                                                    series["test_error"][late:]),
            "final_vs_zoo_max_weight_difference": drift,
            "final_test_error_zoo": 1.0 - task.test_acc(m)}
    report = Report(study.out, f"Fragmentation through training ({recipe.zoo})")
    report.text(
        f"{len(models)} trained models of `{recipe.zoo}` at evenly spaced gap quantiles, {epochs + 1} checkpoints each "
        f"(initialization and every epoch). Fragmentation on {recipe.triplets} same-class training triplets, "
        f"{recipe.resolution} x {recipe.resolution} grid; hidden = the middle hidden layer. Validation error: "
        "the zoo's held-out test split. rho: Spearman's rank correlation over the checkpoints; late rho: "
        f"over the checkpoints from epoch {late} on, after both have fallen from their initial values.")
    report.table(["model", "hyperparameters", "gap", "rho(fragmentation, val. error)",
                  "rho(hidden fragmentation, val. error)", "late rho (input)", "late rho (hidden)",
                  "final val. error (zoo's)", "weight diff. to zoo"],
                 [[k, ", ".join(f"{a}={b}" for a, b in c["hparams"].items()), c["gap"], c["spearman_fragmentation"],
                   c["spearman_fragmentation_hidden"], c["spearman_fragmentation_late"],
                   c["spearman_fragmentation_hidden_late"], f"{c['test_error'][-1]:.4f} ({c['final_test_error_zoo']:.4f})",
                   c["final_vs_zoo_max_weight_difference"]] for k, c in curves.items()])
    report.data = {"recipe": study.recipe, "zoo": recipe.zoo, "params": frag, "models": curves}
    report.figure(_figure(curves), "fragmentation_training.png", "fragmentation and validation error per model")
    report.write()
    return report


def _defined_spearman(x, y) -> float:
    """Spearman's rho over the checkpoints where x is defined (a dead hidden layer has no fragmentation)."""
    keep = [i for i, v in enumerate(x) if not math.isnan(v)]
    return spearman([x[i] for i in keep], [y[i] for i in keep])


def _figure(curves):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.6), squeeze=False)
    for ax, (name, c) in zip(axes[0], curves.items()):
        ax.plot(c["epochs"], c["test_error"], color="black", marker=".", label="validation error")
        ax.plot(c["epochs"], c["train_error"], color="grey", linestyle=":", label="training error")
        ax.set_xlabel("epoch")
        ax.set_ylabel("error")
        twin = ax.twinx()
        twin.plot(c["epochs"], c["fragmentation"], color="tab:red", marker="o", markersize=3, label="input")
        twin.plot(c["epochs"], c["fragmentation_hidden"], color="tab:blue", marker="s", markersize=3, label="hidden")
        twin.set_ylabel("fragmentation")
        ax.set_title(f"{name} (gap {c['gap']:.3f})\nrho input {c['spearman_fragmentation']:.2f}, "
                     f"hidden {c['spearman_fragmentation_hidden']:.2f}", fontsize=9)
        if ax is axes[0, 0]:
            lines = ax.get_legend_handles_labels()
            more = twin.get_legend_handles_labels()
            ax.legend(lines[0] + more[0], lines[1] + [f"fragmentation, {t}" for t in more[1]], fontsize=7)
    fig.tight_layout()
    return fig
