"""A leaderboard of complexity measures over tasks: Markdown, CSV, JSON and a self-contained HTML page.

``make_leaderboard`` is the whole pipeline, one module per step:

- ``collecting``: ``collect`` reads every (task, measure) result from the results store (computed
  beforehand by ``runner.run_measures``, as ``pgdl-bench score`` does), writes the ``.predict`` files
  and scores them; ``compare_with_best`` tests every measure against the best. ``cache`` keeps scores
  and plots of the previous run into the same folder.
- ``board``: the data model. ``build`` turns the cells into one JSON-ready dict (one row per measure,
  default order by mean CMI descending), which every writer renders, so the formats cannot disagree.
  A measure that failed on some models of a task is *not scored* there (with the number of failed
  models); its means over tasks are then undefined and it sorts after the scored rows.
- ``published``: the published scores, as data (``data/reference_scores.json``). For official PGDL
  tasks (recognized by ``official_task``) they are added as reference rows, marked "published, not
  computed here" in every format (``"reference": true`` in JSON, a ``reference`` column in CSV, an
  ``origin`` column and a style in Markdown and HTML).
- rendering: ``markdown``, ``csv_table``, ``html_page`` (with ``text``, the cell texts they share),
  ``plots``; ``files`` names the files.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..replicate_scores import summarize_replicates
from .board import (CEILING_NOTE, PUBLISHED_NOTE, Cell, TaskInfo, best_of_ceiling, build, ceiling_rows,
                    finite_floats, reference_rows, scores_by_task, task_average_x100)
from .cache import ScoreCache
from .collecting import Computed, collect, compare_with_best
from .csv_table import csv_header, to_csv
from .files import plot_file, safe_filename
from .html_page import to_html
from .markdown import to_markdown
from .plots import plot_task
from .published import DOCUMENTED_MODEL_COUNTS, PUBLISHED_SCORES, Published, official_task

__all__ = ["CEILING_NOTE", "DOCUMENTED_MODEL_COUNTS", "PUBLISHED_NOTE", "PUBLISHED_SCORES", "Cell", "Computed",
           "Published", "ScoreCache", "TaskInfo", "best_of_ceiling", "build", "ceiling_rows", "collect",
           "compare_with_best", "csv_header", "make_leaderboard", "official_task", "plot_task", "reference_rows",
           "safe_filename", "task_average_x100", "to_csv", "to_html", "to_markdown", "write_all"]


def write_all(board: dict, out_dir: str | Path, plots: dict[str, bytes]) -> list[Path]:
    """Write leaderboard.{md,csv,json,html} and plots/<task>.png; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task, png in plots.items():
        path = out_dir / plot_file(task)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        written.append(path)
    for name, text in (("leaderboard.md", to_markdown(board)), ("leaderboard.csv", to_csv(board)),
                       ("leaderboard.json", json.dumps(board, indent=1, allow_nan=False) + "\n"),
                       ("leaderboard.html", to_html(board, plots))):
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def make_leaderboard(runs, store, names: list[str], out_dir: str | Path, measure_info: dict[str, dict],
                     dpi: int = 90, ceilings: dict[str, dict] | None = None, provenance: dict | None = None,
                     replicate_sets: dict[str, dict] | None = None) -> tuple[dict, list[Path]]:
    """Collect, build, plot and write a leaderboard into ``out_dir``; returns (the dict, files written)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = ScoreCache(out_dir)
    computed = collect(runs, store, names, out_dir, cache)
    replicate_ceilings = {member: {**per, "set": name} for name, entry in (replicate_sets or {}).items()
                          if "replicate_ceiling" in entry
                          for member, per in zip(entry["members"], entry["replicate_ceiling"]["per_replicate"])}
    board = build(computed.tasks, computed.cells, measure_info, comparisons=compare_with_best(computed, cache),
                  ceilings=ceilings, replicate_ceilings=replicate_ceilings)
    for t in board["tasks"]:
        t["plot"] = plot_file(t["name"])
        if provenance and t["name"] in provenance.get("tasks", {}):
            info = provenance["tasks"][t["name"]]
            t["fingerprint"], t["pinned"] = info["fingerprint"], info.get("pinned")
    if ceilings:
        board["noise_ceiling"] = {name: {**finite_floats(c), "best_measure": best_of_ceiling(board, name, c)}
                                  for name, c in ceilings.items()}
    if replicate_sets:
        scores = scores_by_task(board)
        board["replicate_sets"] = {
            name: finite_floats({**entry, "measures": summarize_replicates(scores, entry["members"])})
            for name, entry in replicate_sets.items()}
    if provenance:
        board["provenance"] = provenance
    plots = {}
    for task in computed.tasks:
        keys, gaps = computed.gaps[task.name]
        cells = {n: computed.cells[n][task.name] for n in names}
        order = [r["measure"] for r in board["rows"] if not r["reference"]]
        key = cache.plot_key(computed.fingerprints[task.name], task.name, dpi, keys, gaps.tolist(),
                             [(n, cells[n].values, cells[n].failed, cells[n].missing) for n in order])
        png = out_dir / plot_file(task.name)
        if cache.plots.get(task.name) == key and png.is_file():
            plots[task.name] = png.read_bytes()
        else:
            plots[task.name] = plot_task(task.name, keys, gaps, board["rows"], cells, dpi=dpi)
        cache.used_plots[task.name] = key
    written = write_all(board, out_dir, plots)
    cache.save()
    return board, written
