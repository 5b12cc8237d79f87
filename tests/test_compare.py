"""``score --compare A B``: a paired comparison on the same test resamples, Holm-corrected over the pairs."""

import json

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.scores.comparisons import Estimate, paired_difference


def test_compare_pairs_two_measures_on_the_same_resamples(tmp_path, capsys):
    args = ["score", "digits-nobn", "--compare", "weight_norm", "distance_from_init", "--compare", "weight_norm",
            "weight_norm", "--backend", "serial", "-q", "--store", str(tmp_path / "s.db"), "--out", str(tmp_path / "p")]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    entries = out["tasks"]["digits-nobn"]
    assert set(entries) == {"weight_norm", "distance_from_init"}  # -m defaults to the compared measures
    first, same = out["comparisons"]
    a, b = entries["weight_norm"], entries["distance_from_init"]
    assert first["difference"] == pytest.approx(a["cmi"] - b["cmi"], abs=1e-15)
    # recomputed from the JSON's own replicates: both measures' draws come from the same test resamples
    raw = paired_difference(Estimate(a["cmi"], np.array(a["resample_scores"]["cmi"])),
                            Estimate(b["cmi"], np.array(b["resample_scores"]["cmi"])))
    assert first["p_value"] == raw["p_value"] and first["interval"] == pytest.approx(list(raw["interval"]))
    assert same["difference"] == 0.0 and same["p_value"] == 1.0 and not same["separated"]
    assert first["p_holm"] == pytest.approx(min(1.0, 2 * first["p_value"]))  # Holm over two: the smaller p times 2
    # a deterministic measure's interval comes from the gap noise alone: not a point
    low, high = a["intervals"]["cmi"]
    assert high - low > 0.005
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "digits-nobn: weight_norm - distance_from_init = " in text and "weight_norm - weight_norm = 0.00" in text
