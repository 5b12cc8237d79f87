"""Plots of each task: every computed measure against the generalization gap, as PNG bytes."""

from __future__ import annotations

import io
import math

import numpy as np

from .board import Cell


def plot_task(task: str, keys: list[str], gaps: np.ndarray, rows: list[dict], cells: dict[str, Cell],
              dpi: int = 90) -> bytes:
    """PNG of a grid of small scatter plots, one per computed measure: value against generalization gap.

    Figures are made without pyplot (Agg canvas, no global state); titles are plain text (no mathtext).
    """
    # Imported here, not at the top: only a leaderboard needs matplotlib, and every command imports this package.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [r["measure"] for r in rows if not r["reference"]]
    ncols = max(1, min(6, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    height = 1.9 * nrows + 0.5  # inches: rows of 1.9 (two title lines, the axes, tick labels), the suptitle
    fig = Figure(figsize=(2.1 * ncols, height), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.suptitle(f"{task}: measure (x) against generalization gap (y)", fontsize=9, parse_math=False)
    if not names:
        fig.text(0.5, 0.5, "no computed measures", ha="center", va="center", parse_math=False)
    for i, name in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        cell = cells[name]
        short = name if len(name) <= 30 else name[:29] + "…"
        if cell.values is not None:
            x = np.array([cell.values[k] for k in keys])
            ax.scatter(x, gaps, s=6, color="#1f77b4", linewidths=0)
            tau = cell.scores["kendall_tau"]
            tau_text = f"tau = {tau:+.2f}" if math.isfinite(tau) else "tau undefined"
            ax.set_title(f"{short}\n{tau_text}", fontsize=7, parse_math=False)
        else:
            ax.set_title(f"{short}\nnot scored", fontsize=7, parse_math=False)
            ax.text(0.5, 0.5, f"{cell.failed + cell.missing} of {cell.num_models}\nmodels failed", ha="center",
                    va="center", fontsize=7, transform=ax.transAxes, parse_math=False)
        ax.tick_params(labelsize=5, length=2, pad=1)
        ax.xaxis.get_offset_text().set_fontsize(5)
        ax.yaxis.get_offset_text().set_fontsize(5)
        ax.locator_params(nbins=4)
    fig.subplots_adjust(left=0.3 / (2.1 * ncols), right=1 - 0.1 / (2.1 * ncols), bottom=0.2 / height,
                        top=1 - 0.85 / height, wspace=0.35, hspace=0.6)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
