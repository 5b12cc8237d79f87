"""The README's Findings quote the committed full-recipe study results (docs/studies/*/results.json)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_double_descent_finding_quotes_its_results():
    data = json.loads((ROOT / "docs" / "studies" / "fragmentation-dd" / "results.json").read_text())
    assert data["recipe"] == "full" and data["label_noise"] == 0.2
    rows = {r["width"]: r for r in data["rows"]}
    threshold = data["interpolation_width"]
    # the threshold is the first width whose training error is at most 0.01 (recomputed from the rows)
    assert threshold == min(w for w, r in rows.items() if r["train_error"] <= 0.01)
    peak_input = max(rows, key=lambda w: rows[w]["fragmentation"])
    peak_hidden = max(rows, key=lambda w: rows[w]["fragmentation_hidden"] or 0)
    peak_test = max((w for w in rows if w >= 8), key=lambda w: rows[w]["test_error"])
    text = (ROOT / "README.md").read_text()
    finding = text[text.index("`pgdl-bench study fragmentation-dd` (full recipe"):]
    finding = finding[:finding.index("\n")]
    assert (threshold, peak_input, peak_hidden, peak_test) == (24, 20, 16, 24)
    assert f"interpolation threshold (width {threshold}, train error {rows[threshold]['train_error']:.3f})" in finding
    assert f"peaks at width {peak_input} ({rows[peak_input]['fragmentation']:.2f} regions per plane)" in finding
    assert f"peaks at width {peak_hidden} ({rows[peak_hidden]['fragmentation_hidden']:.2f})" in finding
    assert f"peak {rows[peak_test]['test_error']:.3f}" in finding
    assert f"{rows[512]['test_error']:.4f} at width 512" in finding and f"{rows[8]['test_error']:.3f} at width 8" in finding
