"""A stored value's key covers everything that can change it: editing a plugin's helper module, a default
parameter or the view recomputes; a comment or docstring edit in another measure's module does not."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import measures
from benchmark.running.store import ResultStore
from measures import code_identity

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
from measures import measure
from helper import FACTOR


@measure("abs_sum_factor", stochastic=False)
def abs_sum_factor(view, scale=1.0):
    """sum |w| times the helper's FACTOR and the parameter scale."""
    return float(sum(float(p.detach().abs().sum()) for p in view.network.parameters())) * FACTOR * scale
'''


def _score(folder: Path, store: Path) -> tuple[float, dict]:
    """``pgdl-bench score digits-nobn --plugin plug.py --json`` in ``folder``: model_0's value and the output."""
    done = subprocess.run([sys.executable, "-m", "benchmark", "score", "digits-nobn", "--plugin", "plug.py", "--json",
                           "-q", "--store", str(store), "--out", str(folder / "pred"), "--workers", "1"],
                          cwd=folder, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    return out["tasks"]["digits-nobn"]["abs_sum_factor"]["predictions"]["model_0"], out


def test_editing_a_plugins_helper_module_or_a_default_parameter_recomputes(tmp_path):
    (tmp_path / "helper.py").write_text("FACTOR = 1\n")
    (tmp_path / "plug.py").write_text(PLUGIN)
    store = tmp_path / "store.sqlite"
    first, out = _score(tmp_path, store)
    assert out["computed"] == 32
    again, out = _score(tmp_path, store)
    assert again == first and out["computed"] == 0 and out["reused"] == 32  # nothing changed: replayed
    (tmp_path / "helper.py").write_text("FACTOR = 2\n")
    doubled, out = _score(tmp_path, store)
    assert out["computed"] == 32 and doubled == pytest.approx(2 * first, rel=1e-12)
    (tmp_path / "plug.py").write_text(PLUGIN.replace("scale=1.0", "scale=3.0"))
    tripled, out = _score(tmp_path, store)
    assert out["computed"] == 32 and tripled == pytest.approx(6 * first, rel=1e-12)


def _versions(root: Path, names: list[str]) -> dict[str, str]:
    """``code_version`` of measures, computed by a fresh interpreter on the checkout copy ``root``."""
    code = ("import json, sys, measures, benchmark.running.runner; from measures.code_identity import code_version; "
            f"print(json.dumps({{n: code_version(measures.get(n)) for n in {names!r}}}))")
    env = {**os.environ, "PYTHONPATH": str(root), "PGDL_BENCH_NO_PLUGINS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def checkout_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkout")
    for package in ("benchmark", "measures", "task_loaders"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("zoos_pinned", "__pycache__"))
    return root


def _edit(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert old in text, f"{path} no longer contains {old!r}"
    path.write_text(text.replace(old, new, 1))
    return text


def test_code_edits_change_the_key_and_comment_edits_do_not(checkout_copy):
    names = ["weight_norm", "hoyer_sparsity"]
    base = _versions(checkout_copy, names)
    # a comment and a docstring edit in another measure's module: no key changes
    sparsity = checkout_copy / "measures" / "families" / "sparsity.py"
    original = sparsity.read_text()
    sparsity.write_text('"""Edited docstring."""\n# a new comment\n' + original.split('"""', 2)[2].lstrip("\n"))
    assert _versions(checkout_copy, names) == base
    # a code edit there changes only that measure's key
    sparsity.write_text(original + "\nEXTRA = 1\n")
    edited = _versions(checkout_copy, names)
    assert edited["weight_norm"] == base["weight_norm"] and edited["hoyer_sparsity"] != base["hoyer_sparsity"]
    sparsity.write_text(original)
    # the view and a loader are on every measure's path
    for relative in ("measures/model_view.py", "task_loaders/keras_weights.py"):
        path = checkout_copy / relative
        text = path.read_text()
        path.write_text(text + "\n_UNUSED = 0\n")
        changed = _versions(checkout_copy, names)
        assert all(changed[n] != base[n] for n in names), relative
        path.write_text(text)
    # a statistic that weight_norm uses, two imports away
    norms = checkout_copy / "measures" / "stats" / "norms.py"
    text = norms.read_text()
    norms.write_text(text + "\n_UNUSED = 0\n")
    assert _versions(checkout_copy, names)["weight_norm"] != base["weight_norm"]
    norms.write_text(text)
    assert _versions(checkout_copy, names) == base


def test_the_key_names_the_library_versions_and_the_walked_modules():
    entry = measures.get("weight_norm")
    identity = code_identity.identity(entry)
    assert f"torch {torch.__version__}" in identity["distributions"]
    assert f"numpy {np.__version__}" in identity["distributions"]
    assert any(d.startswith("scipy ") for d in identity["distributions"])
    assert any(d.startswith("scikit-learn ") for d in identity["distributions"])
    assert list(identity["modules"])[0] == entry.fn.__module__
    assert "measures.stats.norms" in identity["modules"] and "measures.model_view" in identity["modules"]
    # a package's submodules are not its dependencies: weight_norm does not depend on the clustering family
    assert "measures.families.clustering" not in identity["modules"]


def test_source_digest_ignores_comments_docstrings_and_layout():
    a = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    b = 'def f(x):\n\n    # another comment\n    return x+1\n'
    assert code_identity.source_digest(a) == code_identity.source_digest(b)
    assert code_identity.source_digest(a) != code_identity.source_digest(a.replace("+ 1", "+ 2"))


def test_a_store_with_repeats_in_the_params_column_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE results (task_fp TEXT NOT NULL, task_name TEXT NOT NULL, model_id TEXT NOT NULL, "
               "measure TEXT NOT NULL, params TEXT NOT NULL, version TEXT NOT NULL, status TEXT NOT NULL, value REAL, "
               "error TEXT NOT NULL DEFAULT '', seconds REAL NOT NULL DEFAULT 0, created REAL NOT NULL, "
               "PRIMARY KEY (task_fp, model_id, measure, params, version))")
    db.executemany("INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   [("fp", "t", "0", "m", "{}", "1", "ok", 1.5, "", 0.1, 1.0),
                    ("fp", "t", "0", "m", "{}#r2", "1", "ok", 2.5, "", 0.1, 1.0)])
    db.commit()
    db.close()
    with ResultStore(path) as store:
        assert store.rows("fp", "m", "{}", "1", 0)["0"].value == 1.5
        assert store.rows("fp", "m", "{}", "1", 2)["0"].value == 2.5
        assert store.rows("fp", "m", "{}", "1", 1) == {}
