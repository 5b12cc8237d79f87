"""The pinned embedded zoos: shipped with the package, read in place, identified by content."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.leaderboard import CEILING_NOTE
from benchmark.noise_ceiling import task_noise_ceiling
from benchmark.running.store import task_fingerprint
from benchmark.data.zoo_builder import default_zoo_paths
from task_loaders import load_task
from task_loaders.fingerprint import content_fingerprint
from task_loaders.pinned import PINNED_FINGERPRINTS, PINNED_ROOT, pinned_zoo
from task_loaders.training import per_sample_correct
from task_loaders.zoo import DEFAULT_ZOOS, read_correctness

REPO = Path(__file__).resolve().parents[1]


def sha256_of_tree(folder: Path) -> str:
    """The fingerprint's definition, written out again: files but zoo.json, by relative POSIX path."""
    h = hashlib.sha256()
    for path in sorted((p for p in folder.rglob("*") if p.is_file() and p.name != "zoo.json"),
                       key=lambda p: p.relative_to(folder).as_posix()):
        data = path.read_bytes()
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


@pytest.mark.parametrize("name", DEFAULT_ZOOS)
def test_second_machine_gets_the_same_models(name):
    """The shipped files are exactly the ones pinned: their fingerprint is the one recorded in the code."""
    folder = pinned_zoo(name)
    assert folder is not None and folder.parent == PINNED_ROOT
    assert sha256_of_tree(folder) == content_fingerprint(folder) == PINNED_FINGERPRINTS[name]
    task = load_task(folder)
    assert len(task.model_ids) == 32 and task.name == name
    assert task_fingerprint(task) == PINNED_FINGERPRINTS[name]  # the results store's identity of the task


def test_fingerprint_follows_content_not_location(tmp_path, copy_tree):
    source = pinned_zoo("digits-bn")
    copy = copy_tree(source, tmp_path / "elsewhere")
    assert content_fingerprint(copy) == PINNED_FINGERPRINTS["digits-bn"]
    (copy / "zoo.json").write_text("{}")  # the build stamp is not content
    assert content_fingerprint(copy) == PINNED_FINGERPRINTS["digits-bn"]
    weights = copy / "model_7" / "weights.hdf5"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert content_fingerprint(copy) != PINNED_FINGERPRINTS["digits-bn"]
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    (copy / "model_7" / "weights.hdf5").rename(copy / "model_7" / "weights2.hdf5")
    assert content_fingerprint(copy) != PINNED_FINGERPRINTS["digits-bn"]


@pytest.mark.parametrize("name", DEFAULT_ZOOS)
def test_pinned_correctness_reproduces_and_agrees_with_accuracies(name):
    task = load_task(pinned_zoo(name))
    correct = read_correctness(task.path, task.model_ids, "test")
    train = read_correctness(task.path, task.model_ids, "train")
    (x_train, y_train), (x_test, y_test) = task.train_split(), task.test_split()
    assert correct.shape == (32, len(y_test)) and train.shape == (32, len(y_train))
    assert correct.mean(axis=1).tolist() == [task.test_acc(m) for m in task.model_ids]
    assert train.mean(axis=1).tolist() == [task.train_acc(m) for m in task.model_ids]
    for i in (0, 13, 31):  # a few models, rerun here
        network = task.load_model(task.model_ids[i]).network
        assert np.array_equal(per_sample_correct(network, x_test, y_test), correct[i])


def test_default_run_reads_the_pinned_zoos_in_place(tmp_path, capsys):
    paths = default_zoo_paths()
    assert [p.name for p in paths] == list(DEFAULT_ZOOS) and all(p.parent == PINNED_ROOT for p in paths)
    before = {p: p.stat().st_mtime_ns for p in PINNED_ROOT.rglob("*")}
    args = ["score", "-m", "parameter_count", "--backend", "serial", "-q", "--store", str(tmp_path / "s.db"),
            "--out", str(tmp_path / "pred")]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {p: p.stat().st_mtime_ns for p in PINNED_ROOT.rglob("*")} == before  # nothing written or added
    for name in DEFAULT_ZOOS:
        info = out["provenance"]["tasks"][name]
        assert info["fingerprint"] == PINNED_FINGERPRINTS[name] and info["pinned"] == name and info["matches_pinned"]
        assert out["noise_ceiling"][name]["splits"] == 200
    assert main(args) == 0
    text = capsys.readouterr().out
    for name in DEFAULT_ZOOS:
        line = rf"^{name} +fingerprint sha256:{PINNED_FINGERPRINTS[name][:16]} \(pinned zoo, as recorded\)$"
        assert re.search(line, text, re.MULTILINE), text
        assert re.search(rf"^{name} +gap noise ceiling +\d+\.\d\d +0\.\d\d +200 random halvings", text, re.MULTILINE)


@pytest.mark.slow
def test_wheel_ships_the_pinned_zoos(tmp_path):
    """`pip install .` (non-editable) gets every pinned file, and the leaderboard's data: they are in the wheel."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("pgdl_bench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in DEFAULT_ZOOS:
        folder = pinned_zoo(name)
        expected = {f"task_loaders/zoos_pinned/{name}/{p.relative_to(folder).as_posix()}"
                    for p in folder.rglob("*") if p.is_file()}
        assert expected <= names
    assert "benchmark/leaderboard/data/reference_scores.json" in names  # the published rows' data


def test_leaderboard_shows_the_ceiling_rows_and_fingerprints(tmp_path, capsys):
    out = tmp_path / "lb"
    assert main(["leaderboard", "-m", "parameter_count", "-m", "weight_norm", "--backend", "serial", "-q",
                 "--store", str(tmp_path / "s.db"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in DEFAULT_ZOOS:
        assert re.search(rf"^{name} +fingerprint sha256:{PINNED_FINGERPRINTS[name][:16]} ", printed, re.MULTILINE)
    board = json.loads((out / "leaderboard.json").read_text())
    ceiling_rows = [r for r in board["rows"] if r["measure"] == "gap noise ceiling"]
    assert len(ceiling_rows) == 1 and ceiling_rows[0]["reference"] and ceiling_rows[0]["origin"] == CEILING_NOTE
    for name in DEFAULT_ZOOS:
        expected = task_noise_ceiling(load_task(pinned_zoo(name)))
        assert ceiling_rows[0]["tasks"][name]["cmi_x100"] == expected["cmi"] * 100
        best = board["noise_ceiling"][name]["best_measure"]
        scored = {r["measure"]: r["tasks"][name]["cmi"] for r in board["rows"] if not r["reference"]}
        assert best["measure"] == max(scored, key=scored.get)
        assert best["fraction_of_ceiling"] == pytest.approx(scored[best["measure"]] / expected["cmi"])
        assert {t["name"]: t["fingerprint"] for t in board["tasks"]}[name] == PINNED_FINGERPRINTS[name]
    md = (out / "leaderboard.md").read_text()
    assert "| gap noise ceiling |" in md and f"*{CEILING_NOTE}*" in md
    assert "published" not in md  # no published rows on in-house zoos
    with open(out / "leaderboard.csv") as f:
        assert any(line.split(",")[1] == "gap noise ceiling" for line in f)
