"""The BatchNorm study under its former name, ``bn-study``, end to end on a small digits twin zoo."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

import study_checks

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bn_study_alias_writes_report_table_and_plots(tmp_path, monkeypatch):
    monkeypatch.setenv("PGDL_BENCH_HOME", str(tmp_path / "home"))
    out = tmp_path / "study"
    result = subprocess.run([sys.executable, "-m", "benchmark", "bn-study", "--recipe", "digits", "--out", str(out),
                             "--samples", "200", "-q"], cwd=REPO, capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0, result.stderr
    assert "report.md" in result.stdout
    data = study_checks.check_bn(out, "digits-cnn4-study")
    assert data["samples"] == 200
    with open(out / "per_model.csv") as f:
        rows = list(csv.DictReader(f))
    # 2 batchnorm settings x 2 seeds, 4 hidden (post-ReLU) layers each in the 4-conv CNN
    assert len(rows) == 16
    assert {(r["batchnorm"], r["seed"]) for r in rows} == {("False", "0"), ("False", "1"), ("True", "0"), ("True", "1")}
    assert "| statistic | layer | no BatchNorm | BatchNorm |" in (out / "report.md").read_text()
    for r in rows:
        assert 0.0 <= float(r["channel_sparsity"]) <= 1.0
