"""Provenance in every JSON output: versions, commit, device, date, measures' code hashes, task fingerprints."""

from __future__ import annotations

import datetime
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import measures as measure_registry
from benchmark.cli import main
from measures.code_identity import code_hash as measure_code_hash
from benchmark.running.store import task_fingerprint
from measures.registry import Measure
from task_loaders import load_task

REPO = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_score_evaluate_and_leaderboard_json_carry_provenance(toy_task_path, tmp_path, capsys):
    common = ["-m", "weight_norm", "--backend", "serial", "-q", "--store", str(tmp_path / "s.db")]
    assert main(["score", str(toy_task_path), *common, "--json", "--out", str(tmp_path / "pred")]) == 0
    p = json.loads(capsys.readouterr().out)["provenance"]
    assert p["torch"] == torch.__version__ and p["numpy"] == np.__version__ and p["device"].startswith("cpu")
    age = datetime.datetime.now(datetime.timezone.utc) - datetime.datetime.fromisoformat(p["date"])
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=10)
    if (REPO / ".git").exists():
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert p["pgdl_bench"]["git"]["commit"] == head.strip()
    entry = measure_registry.get("weight_norm")
    assert p["measures"] == {"weight_norm": {"version": entry.version, "code_hash": measure_code_hash(entry),
                                             "origin": entry.origin, "params": dict(entry.params)}}
    task = load_task(toy_task_path)
    assert p["tasks"]["pgdl_toy_data"]["fingerprint"] == task_fingerprint(task)
    assert "pinned" not in p["tasks"]["pgdl_toy_data"]

    predict = tmp_path / "pred" / "weight_norm" / "pgdl_toy_data.predict"
    assert main(["evaluate", str(toy_task_path), str(predict), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert isinstance(ev["cmi"], float) and ev["provenance"]["tasks"]["pgdl_toy_data"]["fingerprint"] == task_fingerprint(task)

    assert main(["leaderboard", str(toy_task_path), *common, "--out", str(tmp_path / "lb")]) == 0
    board = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    assert board["provenance"]["measures"]["weight_norm"]["code_hash"] == measure_code_hash(entry)
    assert board["tasks"][0]["fingerprint"] == task_fingerprint(task)
    assert f"fingerprint sha256:{task_fingerprint(task)[:16]}" in (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "Computed by pgdl-bench" in (tmp_path / "lb" / "leaderboard.html").read_text()


def test_code_hash_follows_the_code(tmp_path):
    body = "def m(view, k: int = 1):\n    return {}\n"
    (tmp_path / "a.py").write_text(body.format("1.0"))
    (tmp_path / "b.py").write_text(body.format("1.0"))
    (tmp_path / "c.py").write_text(body.format("2.0"))
    hashes = [measure_code_hash(Measure("m", _load(tmp_path / f"{n}.py", f"prov_{n}").m, "", "test"))
              for n in "abc"]
    assert hashes[0] == hashes[1] != hashes[2] and len(hashes[0]) == 12  # code_identity.code_hash


def test_code_hash_follows_the_statistics_a_measure_uses(tmp_path, monkeypatch):
    """A measure's values depend on the ``measures.stats`` code it calls: editing that code changes its hash."""
    from measures import code_identity

    code_identity.forget()
    dep, user = tmp_path / "dep.py", tmp_path / "user.py"
    user.write_text("from measures.stats._prov_dep import f\n\n\ndef m(view):\n    return f()\n")
    hashes = []
    for value in ("1.0", "2.0"):
        dep.write_text(f"def f():\n    return {value}\n")
        monkeypatch.setitem(sys.modules, "measures.stats._prov_dep", _load(dep, "measures.stats._prov_dep"))
        module = _load(user, "prov_user")
        monkeypatch.setitem(sys.modules, "prov_user", module)
        hashes.append(measure_code_hash(Measure("prov_m", module.m, "", "test")))
    assert hashes[0] != hashes[1]
    code_identity.forget()
    assert [m.__name__ for m in code_identity.dependencies("prov_user")[0]][:1] == ["prov_user"]
    assert "measures.stats._prov_dep" in [m.__name__ for m in code_identity.dependencies("prov_user")[0]]
    builtin = [m.__name__ for m in code_identity.dependencies("measures.families.norms")[0]]
    assert builtin[0] == "measures.families.norms" and "measures.stats.norms" in builtin
    assert "measures.stats.batchnorm_folding" in builtin  # through stats/norms.py
