"""The leaderboard as CSV (``leaderboard.csv``): one row per measure, text cells safe from spreadsheet formulas."""

from __future__ import annotations

import csv
import io


def _csv_num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value) -> str:
    """A text cell that a spreadsheet will not run: a leading = + - @ (a formula) gets an apostrophe."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_header(tasks: list[str]) -> list[str]:
    head = ["rank", "measure", "reference", "origin", "sign", "mean_cmi_x100", "mean_kendall_tau", "mean_psi",
            "tasks_scored"]
    for t in tasks:
        head += [f"{t}:cmi_x100", f"{t}:kendall_tau", f"{t}:psi", f"{t}:failed_models", f"{t}:missing_models"]
    extra = ["mean_cmi_x100_low", "mean_cmi_x100_high", "tied_with_best", "p_value_vs_best", "mean_robust_sign_error"]
    for t in tasks:
        extra += [f"{t}:repeats", f"{t}:cmi_x100_low", f"{t}:cmi_x100_high", f"{t}:robust_sign_error"]
    return [_csv_text(h) for h in head] + ["source"] + [_csv_text(h) for h in extra]


def to_csv(board: dict) -> str:
    tasks = [t["name"] for t in board["tasks"]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(csv_header(tasks))
    for row in board["rows"]:
        out = [row["rank"], _csv_text(row["measure"]), "true" if row["reference"] else "false", _csv_text(row["origin"]),
               "" if row["sign"] is None else row["sign"], _csv_num(row["mean_cmi_x100"]),
               _csv_num(row["mean_kendall_tau"]), _csv_num(row["mean_psi"]), row["tasks_scored"]]
        for t in tasks:
            e = row["tasks"][t]
            out += [_csv_num(e["cmi_x100"]), _csv_num(e["kendall_tau"]), _csv_num(e["psi"]),
                    _csv_text(e.get("failed_models", "")), _csv_text(e.get("missing_models", ""))]
        bounds = row["mean_cmi_x100_interval"] or [None, None]
        comparison = row["comparison_with_best"]
        out += [_csv_text(row["source"]), _csv_num(bounds[0]), _csv_num(bounds[1]),
                "" if row["tied_with_best"] is None else str(row["tied_with_best"]).lower(),
                "" if comparison is None else _csv_num(comparison["p_value"]), _csv_num(row["mean_robust_sign_error"])]
        for t in tasks:
            e = row["tasks"][t]
            task_bounds = (e.get("intervals") or {}).get("cmi_x100") or [None, None]
            out += [e.get("repeats", ""), _csv_num(task_bounds[0]), _csv_num(task_bounds[1]),
                    _csv_num(e["robust_sign_error"])]
        writer.writerow(out)
    return buf.getvalue()
