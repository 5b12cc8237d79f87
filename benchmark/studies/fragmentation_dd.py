"""``study fragmentation-dd``: fragmentation through the double-descent curve of a width sweep.

Mouton et al. (arXiv 2411.04695) report that fragmentation follows double descent, with its maximum at
the interpolation threshold. Here: a one-hidden-layer MLP on MNIST with symmetric label noise (the
zoo recipe ``mnist-mlp-dd``: 20% of the training labels flipped, the test split clean), one model per
width, each trained for a fixed long schedule. Per width: the error on the (noisy) training labels it
was trained on, the clean test error, and fragmentation in input space and at the hidden layer, on
triplets of same-(noisy-)class training samples, as the models saw them. The interpolation threshold
is the smallest width whose training error is at most ``INTERPOLATED`` (about 0).
"""

from __future__ import annotations

import numpy as np

from task_loaders.zoo import get_recipe

from .common import Item, Report, StudyRun, fmt, pyplot
from .common import ZooFragmentationRecipe as Recipe

NAME = "fragmentation-dd"
HELP = "fragmentation, train and test error across a width sweep with label noise (double descent)"
INTERPOLATED = 0.01  # training error at or below this counts as interpolating the (noisy) labels
MARGIN = 0.01  # a rise or fall of test error smaller than this is not counted as one

RECIPES = {"full": Recipe("mnist-mlp-dd", 24, 40), "small": Recipe("mnist-mlp-dd-small", 12, 10)}


def double_descent(widths, test_error, threshold_index: int | None) -> dict:
    """The test-error curve's shape: its peak nearest the threshold and the minima on either side.

    ``peak`` is the width of the largest test error among the widths from the best under-parameterized
    one (the minimum before the threshold) onwards; double descent is reported when the test error
    rises by more than ``MARGIN`` from the minimum before the peak to the peak, and falls by more than
    ``MARGIN`` from the peak to the minimum after it.
    """
    e = np.asarray(test_error, float)
    cut = len(e) if threshold_index is None else threshold_index + 1
    left = int(np.argmin(e[:cut]))
    peak = left + int(np.argmax(e[left:]))
    right = peak + int(np.argmin(e[peak:]))
    found = bool(e[peak] - e[left] > MARGIN and e[peak] - e[right] > MARGIN)
    return {"under_min_width": widths[left], "peak_width": widths[peak], "over_min_width": widths[right],
            "under_min": float(e[left]), "peak": float(e[peak]), "over_min": float(e[right]),
            "double_descent": found}


def _peak(widths, values) -> int | None:
    """The width of the largest value (NaN, n/a, left out); None when there is none."""
    values = np.asarray(values, float)
    return None if np.isnan(values).all() else widths[int(np.nanargmax(values))]


def run(study: StudyRun, data: str | None = None) -> Report:
    recipe = RECIPES[study.recipe]
    task = study.zoo(recipe.zoo, data)
    frag = {"resolution": recipe.resolution, "num_triplets": recipe.triplets}
    parts = {"fragmentation": ("fragmentation", frag), "fragmentation_hidden": ("fragmentation_hidden", frag),
             "parameter_count": ("parameter_count", {})}
    ids = sorted(task.model_ids, key=lambda m: task.hparams(m)["width"])
    # A hidden layer a few units wide (or mostly dead) can map every triplet onto a line: no plane, n/a.
    values = study.compute(task, [Item(f"model_{m}", m, parts) for m in ids], "width sweep",
                           undefined=("fragmentation_hidden",))
    widths = [int(task.hparams(m)["width"]) for m in ids]
    rows = [{"width": w, "model": m, "parameters": int(values[(f"model_{m}", "parameter_count")]),
             "train_error": 1.0 - task.train_acc(m), "test_error": 1.0 - task.test_acc(m),
             "fragmentation": values[(f"model_{m}", "fragmentation")],
             "fragmentation_hidden": values[(f"model_{m}", "fragmentation_hidden")]} for w, m in zip(widths, ids)]
    interpolating = [i for i, r in enumerate(rows) if r["train_error"] <= INTERPOLATED]
    threshold = interpolating[0] if interpolating else None
    shape = double_descent(widths, [r["test_error"] for r in rows], threshold)
    peaks = {k: _peak(widths, [r[k] for r in rows]) for k in ("fragmentation", "fragmentation_hidden")}

    noise = float(dict(get_recipe(recipe.zoo).fixed).get("label_noise", 0.0))
    report = Report(study.out, f"Fragmentation through double descent ({recipe.zoo})")
    report.text(
        f"One-hidden-layer MLPs on MNIST, {len(task.train_split()[1])} training images of which "
        f"{noise:.0%} have a flipped label, {len(task.test_split()[1])} clean test images; fragmentation on "
        f"{recipe.triplets} same-class training triplets, {recipe.resolution} x {recipe.resolution} grid "
        f"(`fragmentation`, `fragmentation_hidden` at the hidden layer; n/a where every triplet's hidden "
        f"representations are collinear, as in a layer too narrow or too dead to span a plane). Interpolation "
        f"threshold: the smallest width with training error <= {INTERPOLATED}.")
    report.table(["width", "parameters", "train error", "test error", "fragmentation (input)",
                  "fragmentation (hidden)"],
                 [[r["width"], r["parameters"], r["train_error"], r["test_error"], r["fragmentation"],
                   r["fragmentation_hidden"]] for r in rows])
    where = f"width {widths[threshold]}" if threshold is not None else "not reached by any width"
    report.text(
        f"- Interpolation threshold: {where}.",
        f"- Test error: {'double descent' if shape['double_descent'] else 'no double descent'} "
        f"(under-parameterized minimum {fmt(shape['under_min'])} at width {shape['under_min_width']}, "
        f"peak {fmt(shape['peak'])} at width {shape['peak_width']}, over-parameterized minimum "
        f"{fmt(shape['over_min'])} at width {shape['over_min_width']}; a change counts above {MARGIN}).",
        f"- Fragmentation peaks at width {peaks['fragmentation']} (input) and {peaks['fragmentation_hidden']} "
        f"(hidden layer).")
    report.data = {"recipe": study.recipe, "zoo": recipe.zoo, "rows": rows, "interpolation_width":
                   widths[threshold] if threshold is not None else None, "test_error_shape": shape,
                   "fragmentation_peak_width": peaks, "params": frag, "label_noise": noise}
    report.figure(_figure(rows, widths[threshold] if threshold is not None else None),
                  "fragmentation_dd.png", "errors and fragmentation against width")
    report.write()
    return report


def _figure(rows, threshold_width):
    plt = pyplot()
    widths = [r["width"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = [(("train_error", "train error (noisy labels)"), ("test_error", "test error")),
              (("fragmentation", "input space"),), (("fragmentation_hidden", "hidden layer"),)]
    titles = ["error", "fragmentation, input space", "fragmentation, hidden layer"]
    for ax, panel, title in zip(axes, panels, titles):
        for key, label in panel:
            ax.plot(widths, [r[key] for r in rows], marker="o", label=label)
        if threshold_width is not None:
            ax.axvline(threshold_width, color="grey", linestyle="--", label="interpolation threshold")
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(w) for w in widths], fontsize=7, rotation=60)
        ax.minorticks_off()
        ax.set_xlabel("hidden width")
        ax.set_title(title)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("error")
    axes[1].set_ylabel("regions per plane (mean)")
    fig.tight_layout()
    return fig
