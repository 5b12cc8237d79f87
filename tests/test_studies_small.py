"""Each study's small recipe end to end through the command line, from an empty bench home (slow).

Every run trains its zoo, computes its values in worker processes, and must finish in under two
minutes; its report is then checked against independent computations (``study_checks``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import study_checks

REPO = Path(__file__).resolve().parents[1]
SMALL = [("fragmentation-dd", "mnist-mlp-dd-small", study_checks.check_dd),
         ("fragmentation-training", "mnist-tiny", study_checks.check_training),
         ("fragmentation-weight-norm", "mnist-tiny", study_checks.check_weight_norm),
         ("fragmentation-layers", "mnist-tiny", study_checks.check_layers),
         ("bn", "mnist-cnn4-small", study_checks.check_bn)]


@pytest.mark.slow
@pytest.mark.parametrize("name,zoo,check", SMALL, ids=[s[0] for s in SMALL])
def test_small_recipe_end_to_end(name, zoo, check, tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("PGDL_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PGDL_MNIST", str(mnist_dir))
    out = tmp_path / name
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "benchmark", "study", name, "--recipe", "small", "--out", str(out),
                             "-q"], cwd=REPO, capture_output=True, text=True, env=os.environ)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert seconds < 120, f"the small recipe of {name} took {seconds:.0f} s"
    check(out, zoo)
