"""The leaderboard as a Markdown page (``leaderboard.md``): notes, then one table row per measure."""

from __future__ import annotations

import re

from .text import cell_text, mean_text, provenance_text, reference_notes, sign_text, task_text, versus_text


def _md(text: str) -> str:
    """Text for a Markdown table cell, shown literally: on one line, ``<``, ``>`` and entity-like ``&``
    escaped as HTML entities, ``|``, ``*``, ``_`` (at word edges) and backticks backslash-escaped."""
    text = " ".join(str(text).split())
    text = re.sub(r"&(?=#?\w+;)", "&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([|*`\\\[\]])", r"\\\1", text)
    return re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", text)


def to_markdown(board: dict) -> str:
    tasks = [t["name"] for t in board["tasks"]]
    lines = ["# Leaderboard", ""]
    described = ", ".join(_md(task_text(t)) for t in board["tasks"])
    lines += [f"Tasks: {described or 'none'}.", "", _md(board["score_note"]), ""]
    for origin, note in reference_notes(board):
        lines += [f"Rows marked *{origin}* {note}", ""]
    for task, c in board.get("noise_ceiling", {}).items():
        if c.get("best_measure"):
            b = c["best_measure"]
            lines += [_md(f"On {task}, the best measure ({b['measure']}, CMI x100 {b['cmi'] * 100:.2f}) reaches "
                          f"{b['fraction_of_ceiling']:.2f} of the gap noise ceiling ({c['cmi'] * 100:.2f})."), ""]
    if board.get("provenance"):
        lines += [_md(provenance_text(board["provenance"])), ""]
    lines += [_md(f"vs best: {board['uncertainty']['test']}."), ""]
    header = ["#", "measure", "sign", *[f"{t} CMI x100" for t in tasks], "mean CMI x100", "vs best", "mean tau",
              "mean psi", "mean robust sign-error", "origin", "source"]
    lines.append("| " + " | ".join(_md(h) for h in header) + " |")
    lines.append("|" + "|".join("---:" if h in ("#", "sign") or "CMI" in h or h.startswith("mean") else "---"
                                for h in header) + "|")
    for row in board["rows"]:
        origin = f"*{row['origin']}*" if row["reference"] else "computed"
        cells = [str(row["rank"]), _md(row["measure"]), sign_text(row),
                 *[_md(cell_text(row, t)) for t in tasks],
                 _md(mean_text(row, "mean_cmi_x100")), versus_text(row), mean_text(row, "mean_kendall_tau", 3),
                 mean_text(row, "mean_psi", 3), mean_text(row, "mean_robust_sign_error", 3), origin,
                 _md(row["source"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
