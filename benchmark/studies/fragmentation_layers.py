"""``study fragmentation-layers``: fragmentation of the input and of every hidden layer, scored per layer.

Mouton et al. (arXiv 2411.04695) report that fragmentation also occurs in hidden representations. For
every model of a zoo: ``fragmentation`` (input space) and ``fragmentation_hidden`` at each hidden layer
(``layer=i``), all on the same training triplets; per layer, the PGDL score (conditional mutual
information with the generalization gap) and Kendall's tau against the gap.
"""

from __future__ import annotations

import numpy as np

from task_loaders import TaskFormatError

from .common import Item, Report, StudyRun, pyplot, trained_models, zoo_scores
from .common import ZooFragmentationRecipe as Recipe

NAME = "fragmentation-layers"
HELP = "fragmentation of the input and of every hidden layer over a zoo, with each layer's CMI against the gap"

RECIPES = {"full": Recipe("mnist-nobn", 24, 20), "small": Recipe("mnist-tiny", 10, 5)}


def hidden_layer_names(task) -> list[str]:
    """The zoo's hidden layers; every model must have the same ones (a per-layer score compares models)."""
    from measures import ModelView

    names = {m: tuple(ModelView(task.build_network(m), task.train_split()).hidden_layers)
             for m in task.model_ids}
    first = names[task.model_ids[0]]
    for m, layers in names.items():
        if layers != first:
            raise TaskFormatError(f"{task.path}: model {m} has hidden layers {', '.join(layers)}, model "
                             f"{task.model_ids[0]} has {', '.join(first)}; a per-layer study needs one layout")
    return list(first)


def layer_parts(task, frag: dict) -> tuple[list[str], dict]:
    """(hidden layer names, parts): the input and every hidden layer, as parts of each model's job."""
    layers = hidden_layer_names(task)
    parts = {"input": ("fragmentation", frag)}
    parts.update({f"hidden {i + 1}": ("fragmentation_hidden", {**frag, "layer": i}) for i in range(len(layers))})
    return layers, parts


def scores(values: dict, task, part: str, models: list[str]) -> dict:
    """CMI, Kendall's tau and Spearman's rho of one part's values against the gaps, over ``models``
    where the value is defined, and the values' mean, min and max there."""
    series = {m: values[(f"model_{m}", part)] for m in task.model_ids}
    defined = np.array([series[m] for m in models if not np.isnan(series[m])])
    summary = ({"mean": float(defined.mean()), "min": float(defined.min()), "max": float(defined.max())}
               if len(defined) else {"mean": np.nan, "min": np.nan, "max": np.nan})
    return zoo_scores(task, models, series) | summary


def run(study: StudyRun, data: str | None = None) -> Report:
    recipe = RECIPES[study.recipe]
    task = study.zoo(recipe.zoo, data)
    frag = {"resolution": recipe.resolution, "num_triplets": recipe.triplets}
    layers, parts = layer_parts(task, frag)
    # A dead hidden layer maps every triplet onto a line: n/a there, not a failure.
    values = study.compute(task, [Item(f"model_{m}", m, parts) for m in task.model_ids], "layers",
                           undefined=tuple(p for p in parts if p != "input"))
    trained = trained_models(task)
    per_layer = {part: scores(values, task, part, trained) for part in parts}
    left_out = [m for m in task.model_ids if m not in trained]
    names = ["input"] + layers
    report = Report(study.out, f"Fragmentation per layer ({recipe.zoo})")
    report.text(
        f"{len(trained)} of {len(task.model_ids)} models trained (training accuracy above always predicting "
        "the most common label); "
        + (f"left out: {', '.join(f'model_{m}' for m in left_out)} (diverged). " if left_out else "")
        + f"n: the trained models where the layer's fragmentation is defined (a dead layer has none). "
        f"Fragmentation on {recipe.triplets} same-class training triplets, "
        f"{recipe.resolution} x {recipe.resolution} grid, the same triplets at every layer. CMI: the PGDL "
        "score against the generalization gap (x 100); tau: Kendall's tau-b against the gap.")
    report.table(["layer", "layer name", "n", "CMI x 100", "Kendall tau", "Spearman rho", "mean", "min", "max"],
                 [[part, name, s["n"], 100 * s["cmi"], s["kendall_tau"], s["spearman"], s["mean"], s["min"], s["max"]]
                  for (part, s), name in zip(per_layer.items(), names)])
    report.data = {"recipe": study.recipe, "zoo": recipe.zoo, "params": frag, "layers": dict(zip(parts, names)),
                   "trained": trained,
                   "scores": per_layer,
                   "values": {part: {f"model_{m}": values[(f"model_{m}", part)] for m in task.model_ids}
                              for part in parts},
                   "gaps": {f"model_{m}": task.gap(m) for m in task.model_ids}}
    report.figure(_figure(per_layer, values, trained), "fragmentation_layers.png", "per-layer fragmentation and score")
    report.write()
    return report


def _figure(per_layer, values, models):
    plt = pyplot()
    parts = list(per_layer)
    x = np.arange(len(parts))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
    left.bar(x - 0.2, [100 * per_layer[p]["cmi"] for p in parts], 0.4, label="CMI x 100")
    left.bar(x + 0.2, [100 * per_layer[p]["kendall_tau"] for p in parts], 0.4, label="Kendall tau x 100")
    left.axhline(0, color="black", linewidth=0.8)
    left.set_xticks(x, parts)
    left.set_title("score against the generalization gap")
    left.legend(fontsize=8)
    right.boxplot([[v for m in models if not np.isnan(v := values[(f"model_{m}", p)])] for p in parts],
                  positions=x)
    right.set_xticks(x, parts)
    right.set_ylabel("regions per plane (mean over triplets)")
    right.set_title("fragmentation over the zoo's trained models")
    fig.tight_layout()
    return fig
