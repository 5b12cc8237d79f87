"""The README's performance table is the summary table of the committed report it cites
(docs/perf/perf_report.md, written by `python -m scripts.perf`), row for row: no hand-edited timing."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def summary_rows(text: str, after: str) -> list[str]:
    start = text.index("| section | check | ours |", text.index(after))
    rows = []
    for line in text[start:].split("\n"):
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_readme_perf_table_is_the_committed_report():
    report = (ROOT / "docs" / "perf" / "perf_report.md").read_text()
    readme = (ROOT / "README.md").read_text()
    shown = summary_rows(readme, "make bench        # = python -m scripts.perf")
    assert len(shown) >= 7
    assert shown == summary_rows(report, "# pgdl-bench performance report")
