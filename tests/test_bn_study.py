"""The BatchNorm study command end to end on a small digits twin zoo."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_bn_study_writes_table_and_plots(tmp_path):
    out = tmp_path / "study"
    result = subprocess.run([sys.executable, "-m", "benchmark", "bn-study", "--recipe", "digits-cnn4-study",
                             "--out", str(out), "--samples", "200", "-q"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (out / "bn_study.png").stat().st_size > 10_000
    with open(out / "per_model.csv") as f:
        rows = list(csv.DictReader(f))
    # 2 batchnorm settings x 2 seeds, 4 hidden (post-ReLU) layers each in the 4-conv CNN
    assert len(rows) == 16
    assert {(r["batchnorm"], r["seed"]) for r in rows} == {("False", "0"), ("False", "1"), ("True", "0"), ("True", "1")}
    summary = json.loads((out / "summary.json").read_text())
    for key, entry in summary.items():
        stat, bn, index = key.split("|")
        values = [float(r[stat]) for r in rows
                  if r["batchnorm"] == str(bn == "bn") and r["layer_index"] == index]
        assert len(values) == 2
        assert entry["mean"] == pytest.approx(np.mean(values)) and entry["min"] == min(values)
    assert "| statistic | layer | no BatchNorm | BatchNorm |" in result.stdout
    for r in rows:
        assert 0.0 <= float(r["channel_sparsity"]) <= 1.0
