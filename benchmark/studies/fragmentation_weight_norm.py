"""``study fragmentation-weight-norm``: is fragmentation a consequence of larger weight norms?

Mouton et al. (arXiv 2411.04695) report that fragmentation is not a direct result of increased weight
norms. Two checks:

(a) Rescaling. Multiplying one ReLU layer's kernel and bias by c > 0 and dividing the next layer's
    kernel by c leaves the network's function unchanged (ReLU, max pooling and flattening commute with
    a positive factor) but changes the sum of squared weights. The rescaled pair is the weight layer
    feeding ``fragmentation_hidden``'s default (middle) hidden layer and the one after it, so the
    hidden representation measured there is itself scaled by c. For powers of two every operation
    scales exactly in floating point, so fragmentation must be *identical*; other c may move a grid
    point that sits on a decision boundary to within float rounding.
(b) Across a zoo: CMI and Kendall's tau of fragmentation and of ``weight_norm`` against the gap, and the
    partial rank correlation of fragmentation with the gap controlling for weight norm (and the
    reverse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from task_loaders.keras_layers import BatchNormalization, Conv2D, Dense

from .common import Item, Report, StudyRun, fmt, partial_spearman, pyplot, spearman, trained_models, zoo_scores

NAME = "fragmentation-weight-norm"
HELP = "fragmentation under function-preserving rescaling, and against weight norm across a zoo"
NORMS = ("weight_norm", "log_sum_frobenius", "log_prod_frobenius")
FRAGMENTATION = ("fragmentation", "fragmentation_hidden")


@dataclass(frozen=True)
class Recipe:
    zoo: str
    resolution: int
    triplets: int
    factors: tuple[float, ...]
    rescaled_models: int  # how many models (spread over the gaps) are rescaled


RECIPES = {
    "full": Recipe("mnist-nobn", 24, 20, (0.125, 0.5, 2.0, 3.0, 8.0, 10.0), 3),
    "small": Recipe("mnist-tiny", 10, 5, (0.25, 3.0, 4.0), 1),
}


def _weight_layers(network) -> list:
    return [m for m in network.children() if isinstance(m, (Conv2D, Dense))]


def rescale(network, index: int, c: float):
    """Weight layer ``index``'s kernel and bias times c, the next weight layer's kernel divided by c (in place)."""
    if c <= 0:
        raise ValueError(f"the rescaling factor must be positive, got {c}")
    if any(isinstance(m, BatchNormalization) for m in network.children()):
        raise ValueError("rescaling through BatchNorm is not this function-preserving pair; use a zoo without it")
    layers = _weight_layers(network)
    if not 0 <= index < len(layers) - 1:
        raise ValueError(f"weight layer {index} has no next weight layer ({len(layers)} weight layers)")
    first, second = (layer.conv if isinstance(layer, Conv2D) else layer.linear for layer in layers[index:index + 2])
    with torch.no_grad():
        first.weight.mul_(c)
        if first.bias is not None:
            first.bias.mul_(c)
        second.weight.div_(c)
    return network


def rescaled_network(task, model_id: str, c: float):
    """A zoo model with the pair feeding its middle hidden layer rescaled by c (see the module docstring)."""
    network = task.load_model(model_id).network
    return rescale(network, middle_pair(network), c)


def middle_pair(network) -> int:
    """Index of the weight layer that feeds ``fragmentation_hidden``'s default layer, hidden[len // 2]:
    in the in-house architectures hidden layer j is the ReLU after weight layer j."""
    from measures import ModelView

    hidden = ModelView(network, (torch.zeros(1), torch.zeros(1, dtype=torch.long)), num_classes=1).hidden_layers
    return len(hidden) // 2


def spread_models(task, count: int) -> list[str]:
    """``count`` trained models (``trained_models``) at evenly spaced quantiles of the generalization gap
    (smallest and largest included)."""
    order = sorted(trained_models(task), key=task.gap)
    picks = np.unique(np.round(np.linspace(0, len(order) - 1, count)).astype(int))
    return [order[i] for i in picks]


def run(study: StudyRun, data: str | None = None) -> Report:
    recipe = RECIPES[study.recipe]
    task = study.zoo(recipe.zoo, data)
    frag = {"resolution": recipe.resolution, "num_triplets": recipe.triplets}
    parts = {"fragmentation": ("fragmentation", frag), "fragmentation_hidden": ("fragmentation_hidden", frag),
             **{n: (n, {}) for n in NORMS}}
    zoo_items = [Item(f"model_{m}", m, parts) for m in task.model_ids]
    rescaled = spread_models(task, recipe.rescaled_models)
    items = zoo_items + [Item(f"model_{m}@x{c:g}", m, parts, "benchmark.studies.fragmentation_weight_norm:"
                              "rescaled_network", {"c": c}) for m in rescaled for c in recipe.factors]
    # A hidden layer whose every triplet is collinear (a dead layer) has no fragmentation: n/a, not a failure.
    values = study.compute(task, items, "zoo and rescaled copies", undefined=("fragmentation_hidden",))

    report = Report(study.out, f"Fragmentation and weight norm ({recipe.zoo})")
    report.text(f"Fragmentation on {recipe.triplets} same-class training triplets, {recipe.resolution} x "
                f"{recipe.resolution} grid; `fragmentation_hidden` at the middle hidden layer.")
    rescaling = _rescaling(task, rescaled, recipe.factors, values)
    _report_rescaling(report, rescaling, recipe.factors)
    zoo = _zoo(task, values)
    _report_zoo(report, zoo)
    report.data = {"recipe": study.recipe, "zoo_recipe": recipe.zoo, "params": frag, "rescaling": rescaling, "zoo": zoo}
    report.figure(_figure(rescaling, zoo, recipe.factors), "fragmentation_weight_norm.png",
                  "rescaling and the zoo")
    report.write()
    return report


def _rescaling(task, models, factors, values) -> dict:
    out = {}
    x, _ = task.test_split()
    for m in models:
        original = task.load_model(m).network
        with torch.inference_mode():
            reference = original(x)
        rows = {"1": {q: values[(f"model_{m}", q)] for q in FRAGMENTATION + NORMS} | {"max_logit_change": 0.0}}
        for c in factors:
            with torch.inference_mode():
                change = float((rescaled_network(task, m, c)(x) - reference).abs().max())
            rows[f"{c:g}"] = {q: values[(f"model_{m}@x{c:g}", q)] for q in FRAGMENTATION + NORMS}
            rows[f"{c:g}"]["max_logit_change"] = change
        out[f"model_{m}"] = {"gap": task.gap(m), "pair": middle_pair(original), "by_factor": rows}
    return out


def _report_rescaling(report: Report, rescaling: dict, factors) -> None:
    report.text("## (a) Function-preserving rescaling",
                "Weight layer `pair` (0 = the first conv) and its bias times c, the next weight layer divided "
                "by c. `max logit change`: the largest absolute change of any logit on the test split.")
    rows = []
    for model, entry in rescaling.items():
        for c, v in entry["by_factor"].items():
            rows.append([model, entry["pair"], c] + [v[q] for q in FRAGMENTATION + NORMS] + [v["max_logit_change"]])
    report.table(["model", "pair", "c", "fragmentation", "fragmentation hidden", *NORMS, "max logit change"], rows)
    unchanged = [all(_same(v[q], e["by_factor"]["1"][q]) for q in FRAGMENTATION) for e in rescaling.values()
                 for c, v in e["by_factor"].items() if float(c) in _powers_of_two(factors)]
    report.text(f"Fragmentation identical to c = 1 for every power-of-two c: {'yes' if all(unchanged) else 'NO'} "
                f"({sum(unchanged)} of {len(unchanged)} rescaled copies). `weight_norm` (the sum of squared weights) "
                "changes with c; `log_prod_frobenius` and the rebalanced `log_sum_frobenius` are invariant under "
                "this rescaling by construction.")


def _same(a: float, b: float) -> bool:
    """Equal, or both undefined (n/a)."""
    return a == b or (np.isnan(a) and np.isnan(b))


def _powers_of_two(factors) -> list[float]:
    return [c for c in factors if np.log2(c) == round(np.log2(c))]


def _zoo(task, values) -> dict:
    """Scores of every measure over the trained models (where defined), and partial rank correlations
    over the models where both fragmentation and weight norm are defined."""
    trained = trained_models(task)
    series = {q: {m: values[(f"model_{m}", q)] for m in task.model_ids} for q in FRAGMENTATION + NORMS}
    scores = {q: zoo_scores(task, trained, s) for q, s in series.items()}
    partial = {}
    for q in FRAGMENTATION:
        kept = [m for m in trained if not np.isnan(series[q][m])]
        x, y, z = (np.array([series[q][m] for m in kept]), np.array([task.gap(m) for m in kept]),
                   np.array([series["weight_norm"][m] for m in kept]))
        r, p = partial_spearman(x, y, z)
        r_back, p_back = partial_spearman(z, y, x)
        partial[q] = {"given_weight_norm": {"r": r, "p": p}, "weight_norm_given_it": {"r": r_back, "p": p_back},
                      "spearman_with_weight_norm": spearman(x, z), "n": len(kept)}
    left_out = {m: "diverged: training accuracy %.3f" % task.train_acc(m) for m in task.model_ids if m not in trained}
    for q in FRAGMENTATION:
        for m in trained:
            if np.isnan(series[q][m]):
                left_out.setdefault(m, f"{q} n/a (every triplet degenerate at that layer)")
    return {"scores": scores, "partial": partial, "gaps": task.gaps().tolist(), "trained": trained,
            "left_out": left_out, "values": {q: [s[m] for m in task.model_ids] for q, s in series.items()},
            "models": list(task.model_ids)}


def _report_zoo(report: Report, zoo: dict) -> None:
    report.text("## (b) Across the zoo",
                f"{len(zoo['trained'])} of {len(zoo['models'])} models trained (training accuracy above always "
                "predicting the most common label); the scores are over those, where the measure is defined "
                "(n). Left out: "
                + (", ".join(f"model_{m} ({why})" for m, why in zoo["left_out"].items()) or "none") + ". "
                "CMI: the PGDL score against the gap (x 100), conditioned on the hyperparameters as the "
                "official scorer does, over the models kept; tau: Kendall's tau-b; rho: Spearman.")
    report.table(["measure", "n", "CMI x 100", "Kendall tau", "Spearman rho"],
                 [[q, s["n"], 100 * s["cmi"], s["kendall_tau"], s["spearman"]] for q, s in zoo["scores"].items()])
    report.text("Partial rank correlation with the gap (Spearman ranks, one variable controlled for; p from "
                "t with n - 3 degrees of freedom):")
    report.table(["measure", "n", "rho with weight norm", "measure with gap, given weight norm (p)",
                  "weight norm with gap, given the measure (p)"],
                 [[q, p["n"], p["spearman_with_weight_norm"],
                   f"{fmt(p['given_weight_norm']['r'])} ({fmt(p['given_weight_norm']['p'], 2)})",
                   f"{fmt(p['weight_norm_given_it']['r'])} ({fmt(p['weight_norm_given_it']['p'], 2)})"]
                  for q, p in zoo["partial"].items()])


def _figure(rescaling, zoo, factors):
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    cs = sorted([1.0, *factors])
    for model, entry in rescaling.items():
        base = entry["by_factor"]["1"]
        for q, style, color in zip(FRAGMENTATION + ("weight_norm",), ("o-", "s--", "^-"),
                                   ("tab:red", "tab:blue", "tab:green")):
            ratios = [entry["by_factor"][f"{c:g}"][q] / base[q] for c in cs]
            left.plot(cs, ratios, style, color=color, label=q if model == next(iter(rescaling)) else None, alpha=0.8)
    left.set_xscale("log", base=2)
    left.set_yscale("log", base=2)
    left.set_xlabel("rescaling factor c")
    left.set_ylabel("value / value at c = 1")
    left.set_title("(a) function-preserving rescaling")
    left.legend(fontsize=8)
    keep = [i for i, m in enumerate(zoo["models"]) if m in zoo["trained"]]
    gaps, frag, norm = (np.array(zoo[k] if k == "gaps" else zoo["values"][k])[keep]
                        for k in ("gaps", "fragmentation", "weight_norm"))
    points = right.scatter(frag, gaps, c=np.log10(norm), cmap="viridis")
    fig.colorbar(points, ax=right, label="log10 weight norm")
    right.set_xlabel("fragmentation (input space)")
    right.set_ylabel("generalization gap")
    right.set_title("(b) the zoo's trained models")
    fig.tight_layout()
    return fig
