"""``study bn``: per-layer sparsity and clustering of BatchNorm and no-BatchNorm twins, over seeds.

After Potgieter, Mouton & Davel ("Impact of Batch Normalization on Convolutional Network
Representations", arXiv 2501.14441): their MNIST setting (the four-conv CNN, SGD at learning rate
0.01, 4 seeds, representations of 5,000 training samples) on real MNIST digits, by default the
mnist10k fixture (``--data DIR`` takes the full MNIST IDX files); their CIFAR-10 VGG-16 with ``--recipe
cifar10-vgg16 --data DIR``. Every per-layer statistic of ``measures.stats.representations`` is computed on the
post-ReLU outputs of each hidden layer for a shared class-stratified sample of training images.

Implicit clusters (the samples that switch a unit on) are read two ways:

- ``cluster_*`` (the existing reading): a unit is a channel, switched on when its feature map's max
  is > 0. At conv layers this is degenerate: nearly every channel fires somewhere on nearly every
  image, so every cluster holds almost every sample.
- ``unit_cluster_*`` (added here): a unit is a channel *at one spatial position*, switched on when its
  own activation is > 0. Chosen over "the channel's mean above its median over samples" because it is
  the conv layer's actual ReLU neuron, the node of Haasbroek & Davel's definition, with the ReLU's own
  threshold; a median rule puts exactly half the samples in every cluster by construction, which
  makes cluster size meaningless and caps purity at 0.2 for ten balanced classes. At dense layers
  the two readings coincide.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np

from task_loaders import TaskFormatError, load_task

from .common import Item, Report, StudyRun, fmt, pyplot, spearman

NAME = "bn"
HELP = "per-layer sparsity and clustering of BatchNorm vs no-BatchNorm twins over seeds (MNIST, CIFAR-10)"
OPTIONS = {
    "--task": {"help": "use this PGDL task folder instead of the recipe's zoo (its grid must have 'batchnorm')"},
    "--samples": {"type": int, "help": "training samples per model for representations (default: the recipe's)"},
}
UNIT_STATISTICS = ("cluster_size", "cluster_purity", "cluster_perplexity")


@dataclass(frozen=True)
class Recipe:
    zoo: str
    samples: int


RECIPES = {
    "full": Recipe("mnist-cnn4-study", 5000),
    "small": Recipe("mnist-cnn4-small", 300),
    "cifar10-vgg16": Recipe("cifar10-vgg16-study", 5000),
    "fashion": Recipe("fashion-cnn4-study", 1000),
    "digits": Recipe("digits-cnn4-study", 200),
}
RECIPES.update({r.zoo: r for r in list(RECIPES.values())})  # the zoo recipe's name, as `bn-study --recipe` took

_MEMO: dict = {"view": None, "stats": {}}


def statistic(view, layer: str, statistic: str, reduce: str = "max") -> float:
    """One per-layer statistic of ``view`` (``measures.families.per_layer.layer_statistics``); all the
    statistics of a layer and reading are computed together once per view."""
    from measures.families.per_layer import layer_statistics
    from measures.stats.representations import STATISTICS

    if _MEMO["view"] is not view:
        _MEMO.update(view=view, stats={})
    key = (layer, reduce)
    if key not in _MEMO["stats"]:
        wanted = STATISTICS if reduce == "max" else UNIT_STATISTICS
        _MEMO["stats"][key] = layer_statistics(view, [layer], statistics=wanted, reduce=reduce)[layer]
    return float(_MEMO["stats"][key][statistic])


def _readings() -> list[tuple[str, str, str]]:
    """(column, statistic, reduce) of every value per layer."""
    from measures.stats.representations import STATISTICS

    return [(s, s, "max") for s in STATISTICS] + [(f"unit_{s}", s, "none") for s in UNIT_STATISTICS]


def run(study: StudyRun, data: str | None = None, task: str | None = None, samples: int | None = None) -> Report:
    recipe = RECIPES[study.recipe]
    zoo = load_task(task) if task else study.zoo(recipe.zoo, data)
    if "batchnorm" not in zoo.grid.names:
        raise TaskFormatError(f"{zoo.path}: a BatchNorm study needs a 'batchnorm' hyperparameter in the grid")
    n = samples or recipe.samples
    items = []
    for m in zoo.model_ids:
        layers = _hidden_layers(zoo, m)
        parts = {f"{i + 1}|{col}": ("benchmark.studies.bn:statistic", {"layer": layer, "statistic": s, "reduce": r})
                 for i, layer in enumerate(layers) for col, s, r in _readings()}
        parts["test_error"] = ("test_error", {})
        items.append(Item(f"model_{m}", m, parts))
    values = study.compute(zoo, items, "representations", sample_size=n, allow_nan=True)
    rows = []
    for item in items:
        hp = zoo.hparams(item.model_id)
        for i, layer in enumerate(_hidden_layers(zoo, item.model_id)):
            row = {"model": item.model_id, "batchnorm": bool(hp["batchnorm"]), "seed": hp.get("seed"),
                   "layer_index": i + 1, "layer": layer}
            row.update({col: values[(item.key, f"{i + 1}|{col}")] for col, _, _ in _readings()})
            rows.append(row)
    report = Report(study.out, f"BatchNorm study: {zoo.name}")
    errors = {bn: [values[(f"model_{m}", "test_error")] for m in zoo.model_ids
                   if bool(zoo.hparams(m)["batchnorm"]) == bn] for bn in (False, True)}
    _write(report, rows, errors, n, study, {m: values[(f"model_{m}", "test_error")] for m in zoo.model_ids})
    return report


def _hidden_layers(task, model_id: str) -> list[str]:
    from measures import ModelView

    return ModelView(task.build_network(model_id), task.train_split()).hidden_layers


def summarize(rows: list[dict]) -> dict:
    """{(statistic, batchnorm, layer_index): (mean, min, max, values)} over seeds (NaNs left out)."""
    stats = [k for k in rows[0] if k not in ("model", "batchnorm", "seed", "layer_index", "layer")]
    out = {}
    for stat in stats:
        for bn in (False, True):
            for index in sorted({r["layer_index"] for r in rows}):
                values = [r[stat] for r in rows if r["batchnorm"] == bn and r["layer_index"] == index]
                finite = [v for v in values if not np.isnan(v)]
                if finite:
                    out[(stat, bn, index)] = (float(np.mean(finite)), float(np.min(finite)), float(np.max(finite)),
                                              values)
    return out


def _write(report: Report, rows: list[dict], errors: dict, n: int, study: StudyRun, error_of: dict) -> None:
    summary = summarize(rows)
    stats = list(dict.fromkeys(k[0] for k in summary))
    layers = sorted({r["layer_index"] for r in rows})
    with open(report.out / "per_model.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report.text(
        f"{len({r['model'] for r in rows})} models, representations of {n} class-stratified training images "
        f"per model. Test error: no BatchNorm {np.mean(errors[False]):.4f} (seeds {_span(errors[False])}), "
        f"BatchNorm {np.mean(errors[True]):.4f} (seeds {_span(errors[True])}).",
        "Mean over seeds, min to max in brackets; layer = hidden layer index. `cluster_*`: a unit is a "
        "channel, on when its map's max > 0; `unit_cluster_*`: a unit is a channel at one position, on "
        "when its activation > 0 (see the study's documentation for why).")
    cells = []
    for stat in stats:
        for index in layers:
            cells.append([stat, index] + [_cell(summary.get((stat, bn, index))) for bn in (False, True)])
    report.table(["statistic", "layer", "no BatchNorm", "BatchNorm"], cells)
    paired = paired_twins(rows, error_of)
    report.text(
        "Paired by seed (each seed's BatchNorm model and its twin share initialization and data order): the "
        "mean difference BatchNorm - no BatchNorm, how many seeds have BatchNorm higher, the paired t-test's "
        "two-sided p (scipy `ttest_rel`; with 4 seeds a p below 0.05 needs a consistent and large effect), "
        "and Spearman's rho between the statistic and the test error over all models (n/a where constant). "
        f"Test error: difference {fmt(paired['test_error']['mean_difference'])}, BatchNorm higher in "
        f"{paired['test_error']['bn_higher']} of {paired['test_error']['pairs']} seeds, p = "
        f"{fmt(paired['test_error']['p'], 2)}.")
    report.table(["statistic", "layer", "BN - no BN", "BN higher (seeds)", "paired p", "rho with test error"],
                 [[stat, index, e["mean_difference"], f"{e['bn_higher']} of {e['pairs']}", fmt(e["p"], 2),
                   e["spearman_test_error"]] for (stat, index), e in paired["layers"].items()])
    report.data = {
        "recipe": study.recipe, "samples": n, "test_error": {"nobn": errors[False], "bn": errors[True]},
        "summary": {f"{s}|{'bn' if bn else 'nobn'}|{i}": {"mean": m, "min": lo, "max": hi, "values": v}
                    for (s, bn, i), (m, lo, hi, v) in summary.items()},
        "per_model": rows,
        "paired": {"test_error": paired["test_error"],
                   "layers": {f"{stat}|{index}": e for (stat, index), e in paired["layers"].items()}},
    }
    report.figure(_figure(summary, stats, layers, report.lines[0][2:]), "bn_study.png",
                  "per-layer statistics, BatchNorm vs no BatchNorm")
    report.write()


def _paired(nobn: list[float], bn: list[float]) -> dict:
    """Mean of bn - nobn over pairs, how many are positive, and the paired t-test's two-sided p."""
    from scipy.stats import ttest_rel

    keep = [(a, b) for a, b in zip(nobn, bn) if not (np.isnan(a) or np.isnan(b))]
    diff = np.array([b - a for a, b in keep])
    p = math.nan
    if len(keep) >= 2 and np.ptp(diff) > 0:
        p = float(ttest_rel([b for _, b in keep], [a for a, _ in keep]).pvalue)
    return {"mean_difference": float(diff.mean()) if len(diff) else math.nan, "bn_higher": int(np.sum(diff > 0)),
            "pairs": len(keep), "p": p}


def paired_twins(rows: list[dict], error_of: dict) -> dict:
    """Per statistic and layer, BatchNorm vs its no-BatchNorm twin of the same seed (``_paired``), and the
    statistic's Spearman correlation with the test error over all models; the same for the test error."""
    by = {(r["seed"], r["batchnorm"], r["layer_index"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows if (r["seed"], not r["batchnorm"], r["layer_index"]) in by},
                   key=str)
    stats = [k for k in rows[0] if k not in ("model", "batchnorm", "seed", "layer_index", "layer")]
    out = {}
    for stat in stats:
        for index in sorted({r["layer_index"] for r in rows}):
            pairs = [(by[(s, False, index)][stat], by[(s, True, index)][stat]) for s in seeds
                     if (s, False, index) in by and (s, True, index) in by]
            entry = _paired([a for a, _ in pairs], [b for _, b in pairs])
            models = [r for r in rows if r["layer_index"] == index and not np.isnan(r[stat])]
            entry["spearman_test_error"] = spearman([r[stat] for r in models], [error_of[r["model"]] for r in models])
            out[(stat, index)] = entry
    twins = [(error_of[by[(s, False, 1)]["model"]], error_of[by[(s, True, 1)]["model"]]) for s in seeds
             if (s, False, 1) in by and (s, True, 1) in by]
    return {"layers": out, "test_error": _paired([a for a, _ in twins], [b for _, b in twins])}


def _span(values) -> str:
    return f"{min(values):.4f} to {max(values):.4f}"


def _cell(entry) -> str:
    if entry is None:
        return "n/a"
    mean, lo, hi, _ = entry
    return f"{mean:.4g} [{lo:.4g}, {hi:.4g}]"


def _figure(summary, stats, layers, title):
    plt = pyplot()
    columns = 4
    rows_n = -(-len(stats) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(4 * columns, 3.0 * rows_n), squeeze=False)
    for ax, stat in zip(axes.ravel(), stats):
        for bn, color, label in ((False, "tab:blue", "no BatchNorm"), (True, "tab:orange", "BatchNorm")):
            present = [i for i in layers if (stat, bn, i) in summary]
            entries = [summary[(stat, bn, i)] for i in present]
            ax.plot(present, [e[0] for e in entries], marker="o", color=color, label=label)
            ax.fill_between(present, [e[1] for e in entries], [e[2] for e in entries], color=color, alpha=0.2)
        ax.set_title(stat.replace("_", " "))
        ax.set_xlabel("hidden layer")
        ax.set_xticks(layers)
    for ax in axes.ravel()[len(stats):]:
        ax.axis("off")
    axes[0, 0].legend()
    fig.suptitle(f"{title}: mean over seeds, band = min to max")
    fig.tight_layout()
    return fig
