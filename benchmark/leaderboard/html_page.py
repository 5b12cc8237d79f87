"""The leaderboard as one self-contained HTML page (``leaderboard.html``).

Inline CSS, one inline script (sorting; it reads cells through ``textContent`` and ``data-`` attributes
only and whitelists itself in a Content-Security-Policy by hash), plots as base64 PNG. Every name, task
and citation is passed through ``html.escape``.
"""

from __future__ import annotations

import base64
import hashlib
import html

from .text import (cell_text, fmt, mean_text, not_scored, provenance_text, reference_notes, sign_text, task_text,
                   versus_text)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f0f0f0; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="descending"] .arrow::after { content: " \\25BC"; }
th[aria-sort="ascending"] .arrow::after { content: " \\25B2"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.na { color: #a33; font-size: 11px; }
td.source { font-size: 11px; color: #555; max-width: 28em; }
tr.reference td { background: #fff8e1; font-style: italic; }
tr.tied td, span.tied { background: #e8f5e9; }
.badge { font-size: 10px; background: #f0c040; color: #000; border-radius: 3px; padding: 0 4px; font-style: normal; }
img.plot { max-width: 100%; border: 1px solid #ddd; }
"""

_JS = """
(function () {
  var table = document.getElementById("leaderboard");
  var body = table.tBodies[0];
  var current = {index: -1, dir: 0};
  function value(row, index, type) {
    var raw = row.cells[index].getAttribute("data-value");
    if (raw === null || raw === "") { return null; }
    return type === "num" ? parseFloat(raw) : raw;
  }
  function sortBy(th) {
    var index = th.cellIndex;
    var type = th.getAttribute("data-type");
    var dir = current.index === index ? -current.dir : (type === "num" ? -1 : 1);
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var va = value(a, index, type), vb = value(b, index, type);
      if (va === null || vb === null) { return (va === null) - (vb === null); }
      if (type === "num") { return dir * (va - vb); }
      return dir * (va < vb ? -1 : va > vb ? 1 : 0);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir < 0 ? "descending" : "ascending");
    current = {index: index, dir: dir};
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    if (th.getAttribute("data-type")) { th.addEventListener("click", function () { sortBy(th); }); }
  });
})();
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _td(text: str, value=None, cls: str = "", title: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    if value is not None:
        attrs += f' data-value="{_e(value)}"'
    else:
        attrs += ' data-value=""'
    if title:
        attrs += f' title="{_e(title)}"'
    return f"<td{attrs}>{_e(text)}</td>"


def to_html(board: dict, plots: dict[str, bytes]) -> str:
    tasks = [t["name"] for t in board["tasks"]]
    script_hash = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    heads = [("#", "num"), ("measure", "text"), ("sign", "num"),
             *[(f"{t} CMI x100", "num") for t in tasks],
             ("mean CMI x100", "num"), ("vs best", "num"), ("mean tau", "num"), ("mean psi", "num"),
             ("mean robust sign-error", "num"), ("origin", "text"), ("source", "text")]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">',
           "<title>pgdl-bench leaderboard</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>Leaderboard</h1>"]
    described = ", ".join(task_text(t) for t in board["tasks"])
    out.append(f"<p>Tasks: {_e(described or 'none')}.</p>")
    note = "".join(f' Rows marked <span class="badge">{_e(origin)}</span> {_e(text)}'
                   for origin, text in reference_notes(board))
    out.append(f"<p>{_e(board['score_note'])} Click a column header to sort.{note}</p>")
    if board.get("provenance"):
        out.append(f"<p>{_e(provenance_text(board['provenance']))}</p>")
    out.append(f"<p>vs best: {_e(board['uncertainty']['test'])}; rows tied with the best are "
               '<span class="tied">highlighted</span>.</p>')
    out.append('<table id="leaderboard"><thead><tr>')
    for label, kind in heads:
        out.append(f'<th data-type="{kind}" scope="col">{_e(label)}<span class="arrow"></span></th>')
    out.append("</tr></thead><tbody>")
    for row in board["rows"]:
        cls = ' class="reference"' if row["reference"] else (' class="tied"' if row["tied_with_best"] else "")
        out.append(f'<tr{cls} data-reference="{"true" if row["reference"] else "false"}">')
        out.append(_td(str(row["rank"]), row["rank"], "num"))
        out.append(_td(row["measure"], row["measure"], title=row.get("description", "")))
        out.append(_td(sign_text(row), row["sign"], "num"))
        for t in tasks:
            e = row["tasks"][t]
            title = "" if row["reference"] else (
                f"tau {fmt(e['kendall_tau'], 3)}, psi {fmt(e['psi'], 3)}" if e["scored"] else not_scored(e))
            out.append(_td(cell_text(row, t), e["cmi_x100"], "num" if e["scored"] else "na", title))
        out.append(_td(mean_text(row, "mean_cmi_x100"), row["mean_cmi_x100"], "num"))
        comparison = row["comparison_with_best"]
        out.append(_td(versus_text(row), None if comparison is None else comparison["p_value"]))
        out.append(_td(mean_text(row, "mean_kendall_tau", 3), row["mean_kendall_tau"], "num"))
        out.append(_td(mean_text(row, "mean_psi", 3), row["mean_psi"], "num"))
        out.append(_td(mean_text(row, "mean_robust_sign_error", 3), row["mean_robust_sign_error"], "num"))
        if row["reference"]:
            out.append(f'<td data-value="{_e(row["origin"])}"><span class="badge">{_e(row["origin"])}</span></td>')
        else:
            out.append(_td("computed", "computed"))
        out.append(_td(row["source"], row["source"], "source"))
        out.append("</tr>")
    out.append("</tbody></table>")
    for t in tasks:
        if t in plots:
            data = base64.b64encode(plots[t]).decode()
            out.append(f"<h2>{_e(t)}</h2>")
            out.append(f'<img class="plot" alt="{_e("measures against the generalization gap on " + t)}" '
                       f'src="data:image/png;base64,{data}">')
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out) + "\n"
