"""The words and numbers a table shows: one renderer of scores for the command line's table and the
leaderboard's Markdown and HTML pages (value ± half the width of its 95% interval; the comparison with
the best)."""

from __future__ import annotations

from .board import CEILING_NOTE, PUBLISHED_NOTE


def fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def pm_text(value: float | None, bounds, digits: int = 2, scale: float = 1.0) -> str:
    """``value ± h``, h half the width of its 95% interval (``± ?`` for a stochastic measure scored once),
    both times ``scale`` (100 for CMI x 100; a measure's sign for tau and psi in its orientation)."""
    if value is not None and value != value:  # NaN: undefined
        return "nan"
    text = fmt(None if value is None else value * scale, digits) or "nan"
    if bounds is None:
        return text if value is None else f"{text} ± ?"
    return f"{text} ± {(bounds[1] - bounds[0]) / 2 * abs(scale):.{digits}f}"


def versus(comparison: dict | None, measure: str) -> str:
    """The corrected comparison with the best: 'best', 'not separated (p = 0.34)' (the data cannot tell it
    from the best: low power, not a finding of equality), 'worse (p = 0.01)' or ''."""
    if not comparison:
        return ""
    if comparison["best"] == measure:
        return "best"
    return f"{'not separated' if comparison['tied_with_best'] else 'worse'} (p = {comparison['p_value']:.2f})"


def versus_text(row: dict) -> str:
    """``versus`` of a leaderboard row."""
    return versus(row.get("comparison_with_best"), row["measure"])


def cell_text(row: dict, task: str) -> str:
    """What a table shows for a row on a task: CMI x 100 ± half its 95% interval, 'not scored (k of N
    failed)' or '-'."""
    entry = row["tasks"][task]
    if entry["scored"] and not row["reference"]:
        return pm_text(entry["cmi_x100"], entry["intervals"]["cmi_x100"])
    if entry["scored"]:
        return fmt(entry["cmi_x100"]) or "nan"
    if row["reference"]:
        return "-"
    return not_scored(entry)


def task_text(t: dict) -> str:
    """A task as the page and the Markdown name it: models, official task, fingerprint."""
    extra = f", official PGDL {t['official']}" if t.get("official") else ""
    if t.get("fingerprint"):
        extra += f", fingerprint sha256:{t['fingerprint'][:16]}" + (" (pinned)" if t.get("pinned") else "")
    return f"{t['name']} ({t['num_models']} models{extra})"


def reference_notes(board: dict) -> list[tuple[str, str]]:
    """(origin, what it means) for each kind of reference row the board holds."""
    origins = {r["origin"] for r in board["rows"] if r["reference"]}
    notes = []
    if PUBLISHED_NOTE in origins:
        notes.append((PUBLISHED_NOTE, "are published scores, copied from their sources (CMI x 100 only)."))
    if CEILING_NOTE in origins:
        notes.append((CEILING_NOTE, "are not measures: the gap on one random half of the test set scored as a "
                      "measure of the gap on the other half (gap noise ceiling: how well any measure could do, given "
                      "how noisily the gaps are measured), or the other training seeds' gaps as measures of a "
                      "replicate's gaps (replicate gap ceiling: how much of the gap the hyperparameters set)."))
    return notes


def provenance_text(p: dict) -> str:
    git = p["pgdl_bench"].get("git")
    commit = f", commit {git['commit'][:12]}{' (modified)' if git.get('dirty') else ''}" if git else ""
    return (f"Computed by pgdl-bench {p['pgdl_bench']['version']}{commit} with torch {p['torch']}, numpy "
            f"{p['numpy']} on {p['device']}, {p['date']}; each measure's version, code hash and parameters "
            "are in leaderboard.json (provenance).")


def not_scored(entry: dict) -> str:
    parts = []
    if entry.get("failed_models"):
        parts.append(f"{entry['failed_models']} of {entry['num_models']} models failed")
    if entry.get("missing_models"):
        parts.append(f"{entry['missing_models']} of {entry['num_models']} not computed")
    return "not scored (" + ", ".join(parts) + ")" if parts else "not scored"


def mean_text(row: dict, key: str, digits: int = 2) -> str:
    value = row.get(key)
    if value is not None and key == "mean_cmi_x100" and not row["reference"]:
        return pm_text(value, row["mean_cmi_x100_interval"], digits)
    if value is not None:
        return fmt(value, digits)
    if key == "mean_cmi_x100" and row.get("published_mean_x100") is not None:
        tasks = ", ".join(row["published_mean_tasks"])
        return f"({fmt(row['published_mean_x100'])} published over {tasks})"
    return "-"


def sign_text(row: dict) -> str:
    return "" if row["sign"] is None else f"{row['sign']:+d}"
