"""docs/reports/findings.md quotes the committed full-recipe study results (docs/studies/*/results.json)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FINDINGS = ROOT / "docs" / "reports" / "findings.md"


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
    text = FINDINGS.read_text()
    finding = text[text.index("`pgdl-bench study fragmentation-dd` (full recipe"):]
    finding = finding[:finding.index("\n")]
    assert (threshold, peak_input, peak_hidden, peak_test) == (24, 20, 16, 24)
    assert f"interpolation threshold (width {threshold}, train error {rows[threshold]['train_error']:.3f})" in finding
    assert f"peaks at width {peak_input} ({rows[peak_input]['fragmentation']:.2f} regions per plane)" in finding
    assert f"peaks at width {peak_hidden} ({rows[peak_hidden]['fragmentation_hidden']:.2f})" in finding
    assert f"peak {rows[peak_test]['test_error']:.3f}" in finding
    assert f"{rows[512]['test_error']:.4f} at width 512" in finding and f"{rows[8]['test_error']:.3f} at width 8" in finding


def _results(study: str) -> dict:
    return json.loads((ROOT / "docs" / "studies" / study / "results.json").read_text())


def _finding(command: str) -> str:
    text = FINDINGS.read_text()
    row = text[text.index(f"`pgdl-bench study {command}` (full recipe"):]
    return row[:row.index("\n")]


def _span(values, digits: int = 2) -> str:
    return f"{min(values):.{digits}f} to {max(values):.{digits}f}"


def test_layers_finding_quotes_its_results():
    data = _results("fragmentation-layers")
    assert data["recipe"] == "full"
    finding = _finding("fragmentation-layers")
    hidden = {k: v for k, v in data["scores"].items() if k.startswith("hidden")}
    assert all(s["n"] == len(data["trained"]) == 30 and s["max"] > 1 for s in hidden.values())
    trained = [f"model_{m}" for m in data["trained"]]
    flat = {part: sum(data["values"][part][m] == 1.0 for m in trained) for part in data["values"]}
    assert f"no fragmentation at all (1 region per class on every plane) in {sum(flat.values())} of " \
           f"{len(hidden) * len(trained)} cases, {flat['hidden 4']} of them at the fourth hidden layer" in finding
    assert flat["input"] == 0 and max(flat, key=flat.get) == "hidden 4"
    assert data["layers"]["hidden 4"] == "activation_3"
    assert f"{_span([s['mean'] for s in hidden.values()])} regions per plane" in finding
    assert f"(input space: {data['scores']['input']['mean']:.2f}), up to " \
           f"{max(s['max'] for s in hidden.values()):.2f}" in finding
    assert f"CMI x 100 against the gap is {_span([100 * s['cmi'] for s in hidden.values()])} (input space " \
           f"{100 * data['scores']['input']['cmi']:.2f})" in finding
    taus = sorted(s["kendall_tau"] for s in hidden.values())
    assert f"tau {taus[-1]:.2f} to {taus[0]:.2f} (input space {data['scores']['input']['kendall_tau']:.2f})" in finding


def test_training_finding_quotes_its_results():
    data = _results("fragmentation-training")
    assert data["recipe"] == "full" and len(data["models"]) == 4
    curves = list(data["models"].values())
    assert all(len(c["test_error"]) == 16 for c in curves)
    finding = _finding("fragmentation-training")
    assert f"over training {_span([c['spearman_fragmentation'] for c in curves])} in input space and " \
           f"{_span([c['spearman_fragmentation_hidden'] for c in curves])} at the middle hidden layer" in finding
    assert f"from epoch {curves[0]['late_from_epoch']} on" in finding
    assert f"{_span([c['spearman_fragmentation_late'] for c in curves])} (input) and " \
           f"{_span([c['spearman_fragmentation_hidden_late'] for c in curves])} (hidden)" in finding
    assert min(c[k] for c in curves for k in ("spearman_fragmentation", "spearman_fragmentation_hidden")) > 0


def test_weight_norm_finding_quotes_its_results():
    data = _results("fragmentation-weight-norm")
    assert data["recipe"] == "full"
    finding = _finding("fragmentation-weight-norm")
    copies = [(e["by_factor"]["1"], row) for e in data["rescaling"].values()
              for c, row in e["by_factor"].items() if c != "1"]
    same = sum(row["fragmentation"] == base["fragmentation"] and
               row["fragmentation_hidden"] == base["fragmentation_hidden"] for base, row in copies)
    assert f"exactly for every c ({same} of {len(copies)} copies" in finding and same == len(copies) == 18
    ratios = [row["weight_norm"] / base["weight_norm"] for base, row in copies]
    assert f"`weight_norm` by {min(ratios):.1f}x to {max(ratios):.1f}x" in finding
    assert max(row["max_logit_change"] for _, row in copies) < 8e-6
    scores, partial = data["zoo"]["scores"], data["zoo"]["partial"]["fragmentation"]
    assert f"fragmentation has CMI x 100 {100 * scores['fragmentation']['cmi']:.2f}, tau " \
           f"{scores['fragmentation']['kendall_tau']:.2f}, `weight_norm` {100 * scores['weight_norm']['cmi']:.2f} " \
           f"and {scores['weight_norm']['kendall_tau']:.2f}" in finding
    assert f"partial rank correlation with the gap is {partial['given_weight_norm']['r']:.2f} " \
           f"(p = {partial['given_weight_norm']['p']:.2f}), weight norm's given fragmentation " \
           f"{partial['weight_norm_given_it']['r']:.2f} (p = {partial['weight_norm_given_it']['p']:.2f})" in finding


def test_bn_findings_quote_their_results():
    data = _results("bn")
    assert data["recipe"] == "full" and data["samples"] == 5000
    paired, text = data["paired"], FINDINGS.read_text()
    sparsity = _finding("bn")
    clustering = text[text.index("| Potgieter et al.: BatchNorm models' representations show"):]
    clustering = clustering[:clustering.index("\n")]

    def layer(stat: str, index: int) -> dict:
        return paired["layers"][f"{stat}|{index}"]

    hoyer = [layer("hoyer_sparsity", i) for i in range(1, 5)]
    assert all(e["bn_higher"] == 0 and e["pairs"] == 4 for e in hoyer)
    assert f"by {-max(e['mean_difference'] for e in hoyer):.2f} to {-min(e['mean_difference'] for e in hoyer):.2f}, " \
           f"paired t-test p = {max(e['p'] for e in hoyer):.3f} to {min(e['p'] for e in hoyer):.0e}" in sparsity
    last = data["summary"]
    assert f"({last['element_sparsity|nobn|4']['mean']:.2f} to {last['element_sparsity|bn|4']['mean']:.2f}, " \
           f"p = {layer('element_sparsity', 4)['p']:.0e})" in sparsity
    errors = data["test_error"]
    assert f"test error is {sum(errors['nobn']) / 4:.4f} without and {sum(errors['bn']) / 4:.4f} with" in sparsity
    assert f"p = {paired['test_error']['p']:.3f})" in sparsity and paired["test_error"]["bn_higher"] == 1
    rhos = [e["spearman_test_error"] for e in hoyer]
    assert f"test error is +{min(rhos):.2f} to +{max(rhos):.2f}" in sparsity
    for stat, i, shown in (("silhouette", 3, "+0.013"), ("silhouette", 4, "+0.043"), ("davies_bouldin", 4, "-0.57"),
                           ("silhouette", 1, "-0.024"), ("davies_bouldin", 1, "+0.68")):
        e = layer(stat, i)
        assert f"{e['mean_difference']:+.{len(shown.split('.')[1])}f}" == shown and shown in clustering
        assert e["bn_higher"] in (0, 4)
    purity = layer("unit_cluster_purity", 2), layer("unit_cluster_purity", 4)
    assert f"(+{purity[0]['mean_difference']:.3f}, p = {purity[0]['p']:.3f})" in clustering
    assert f"({purity[1]['mean_difference']:.3f}, p = {purity[1]['p']:.0e})" in clustering
    assert all(last[f"cluster_purity|bn|{i}"]["max"] == 0.1 for i in range(1, 5))
