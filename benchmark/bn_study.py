"""The BatchNorm study: per-layer sparsity and clustering of BN and no-BN twins, over seeds.

After Potgieter, Mouton & Davel ("Impact of Batch Normalization on Convolutional Network
Representations", arXiv 2501.14441): train (or load from the zoo cache) a recipe whose grid is
``batchnorm`` x ``seed``, compute every per-layer statistic of ``measures.representations`` on the
post-activation outputs of each hidden layer for a shared stratified sample of training data, and
write a table (CSV and markdown) and one PNG per statistic: mean over seeds with the min-max spread.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from task_loaders import TaskFormatError, load_task

from .runner import model_view
from .zoo_builder import build_zoo


def collect(task, n: int | None = None, progress: bool = True) -> list[dict]:
    """One row per (model, hidden layer): batchnorm, seed, layer index and name, every statistic."""
    from measures.representations import layer_statistics

    rows = []
    for model_id in tqdm(task.model_ids, desc="bn-study", unit="model", disable=not progress):
        hparams = task.hparams(model_id)
        view = model_view(task, model_id)
        if n is not None:
            view.sample_size = n
        stats = layer_statistics(view)
        for index, layer in enumerate(view.hidden_layers):
            rows.append({"model": model_id, "batchnorm": bool(hparams["batchnorm"]), "seed": hparams.get("seed"),
                         "layer_index": index + 1, "layer": layer, **stats[layer]})
    return rows


def summarize(rows: list[dict]) -> tuple[list[str], dict]:
    """{(statistic, batchnorm, layer_index): (mean, min, max, values)} over seeds."""
    stats = [k for k in rows[0] if k not in ("model", "batchnorm", "seed", "layer_index", "layer")]
    out = {}
    for stat in stats:
        for bn in (False, True):
            for index in sorted({r["layer_index"] for r in rows}):
                values = [r[stat] for r in rows if r["batchnorm"] == bn and r["layer_index"] == index]
                if values:
                    out[(stat, bn, index)] = (float(np.mean(values)), float(np.min(values)), float(np.max(values)),
                                              values)
    return stats, out


def write_outputs(rows: list[dict], out: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "per_model.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    stats, summary = summarize(rows)
    layers = sorted({r["layer_index"] for r in rows})
    lines = [f"# {title}", "", "Mean over seeds (min to max in brackets); layer = hidden layer index.", ""]
    lines.append("| statistic | layer | no BatchNorm | BatchNorm |")
    lines.append("| --- | --- | --- | --- |")
    for stat in stats:
        for index in layers:
            cells = []
            for bn in (False, True):
                mean, lo, hi, _ = summary[(stat, bn, index)]
                cells.append(f"{mean:.4g} [{lo:.4g}, {hi:.4g}]")
            lines.append(f"| {stat} | {index} | {cells[0]} | {cells[1]} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(
        {f"{stat}|{'bn' if bn else 'nobn'}|{index}": {"mean": m, "min": lo, "max": hi, "values": v}
         for (stat, bn, index), (m, lo, hi, v) in summary.items()}, indent=1) + "\n")

    paths = []
    columns = 4
    rows_n = -(-len(stats) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(4 * columns, 3.2 * rows_n), squeeze=False)
    for ax, stat in zip(axes.ravel(), stats):
        for bn, color, label in ((False, "tab:blue", "no BatchNorm"), (True, "tab:orange", "BatchNorm")):
            mean = [summary[(stat, bn, i)][0] for i in layers]
            lo = [summary[(stat, bn, i)][1] for i in layers]
            hi = [summary[(stat, bn, i)][2] for i in layers]
            ax.plot(layers, mean, marker="o", color=color, label=label)
            ax.fill_between(layers, lo, hi, color=color, alpha=0.2)
        ax.set_title(stat.replace("_", " "))
        ax.set_xlabel("hidden layer")
        ax.set_xticks(layers)
    for ax in axes.ravel()[len(stats):]:
        ax.axis("off")
    axes[0, 0].legend()
    fig.suptitle(f"{title}: mean over seeds, band = min to max")
    fig.tight_layout()
    figure = out / "bn_study.png"
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    paths.append(figure)
    return paths


def run_study(recipe: str, out: str | Path, task_path: str | None = None, n: int | None = None,
              progress: bool = True, data=None) -> Path:
    """Build (or reuse) the study's zoo, compute per-layer statistics, write the table and plots."""
    path = Path(task_path) if task_path else build_zoo(recipe, data=data, progress=progress)
    task = load_task(path)
    if "batchnorm" not in task.grid.names:
        raise TaskFormatError(f"{path}: a BatchNorm study needs a 'batchnorm' hyperparameter in the grid")
    rows = collect(task, n=n, progress=progress)
    out = Path(out)
    write_outputs(rows, out, f"BatchNorm study: {task.name}")
    return out
