"""The wheel carries the three packages and the pinned zoos, and none of the perf or fault-injection harnesses."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_packages_and_no_harness(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"benchmark", "measures", "task_loaders"}
    assert not [n for n in names if "/perf/" in n or "fault" in n or n.startswith(("scripts/", "tests/"))]
    assert "benchmark/running/runner.py" in names and "measures/model_view.py" in names
    assert any(n.startswith("task_loaders/zoos_pinned/digits-nobn/model_0/") for n in names)
