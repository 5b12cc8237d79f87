"""The README's main-job block is what `make run` (`pgdl-bench score`, the pinned zoos) prints now.

The fast test recomputes the deterministic measures' rows, the noise-ceiling rows and the fingerprint
lines in this process and compares them with the README, column by column (all but "vs best", which
depends on which other measures are scored). The slow test runs the whole main job from an empty
store and compares its stdout with the README block line for line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import cli
from task_loaders.fingerprint import short_fingerprint
from task_loaders.pinned import PINNED_FINGERPRINTS

ROOT = Path(__file__).resolve().parents[1]
CHEAP_DETERMINISTIC = ("weight_norm", "distance_from_init", "parameter_count", "path_norm", "log_sum_frobenius")
VERSUS = re.compile(r"  (best|tied p=\d\.\d\d|worse p=\d\.\d\d)  ")


def readme_block() -> list[str]:
    """The lines of the fenced block after the Quick start's "Real output" sentence."""
    text = (ROOT / "README.md").read_text()
    start = text.index("`tests/test_readme_main_job.py` checks this block")
    a = text.index("```\n", start) + 4
    return text[a:text.index("```\n", a)].rstrip("\n").split("\n")


def without_versus(line: str) -> list[str]:
    return VERSUS.sub("  ", line).split()


def test_readme_rows_of_deterministic_measures_ceilings_and_fingerprints(capsys):
    block = readme_block()
    args = ["score", "--backend", "serial", "-q"] + [a for m in CHEAP_DETERMINISTIC for a in ("-m", m)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out.rstrip("\n").split("\n")
    measure_lines = [line for line in out if line.split()[:1] in (["digits-bn"], ["digits-nobn"])
                     and line.split()[1] in CHEAP_DETERMINISTIC]
    assert len(measure_lines) == 2 * len(CHEAP_DETERMINISTIC)
    for line in measure_lines:
        task, measure = line.split()[:2]
        shown = [b for b in block if b.split()[:2] == [task, measure]]
        assert len(shown) == 1, f"README has no single row for {task} {measure}"
        assert without_versus(shown[0]) == without_versus(line)
    # the noise-ceiling rows and the fingerprint lines, exactly
    for line in out:
        if "gap noise ceiling" in line or " fingerprint " in line:
            assert line in block, line
    for zoo, fingerprint in PINNED_FINGERPRINTS.items():
        assert f"{zoo:<11}  fingerprint {short_fingerprint(fingerprint)} (pinned zoo, as recorded)" in block


def test_readme_lists_every_measure_on_both_zoos():
    import measures

    block = readme_block()
    builtin = sorted(n for n in measures.available() if measures.get(n).origin.startswith("measures."))
    rows = [line.split()[:2] for line in block[1:] if line.split()[:1] in (["digits-bn"], ["digits-nobn"])
            and " fingerprint " not in line and "noise ceiling" not in line]
    assert rows == [[zoo, m] for zoo in ("digits-bn", "digits-nobn") for m in builtin]


@pytest.mark.slow
def test_main_job_prints_the_readme_block(tmp_path):
    """`pgdl-bench score` from an empty store (what `make run` runs): stdout is the README block."""
    env = dict(os.environ, PGDL_BENCH_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "benchmark", "score", "--out", str(tmp_path / "predictions")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1800)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.rstrip("\n").split("\n") == readme_block()


def test_measures_table_copies_the_main_job_block():
    """The Measures section's side-by-side table: its digits columns are the main-job block's CMI x 100."""
    import measures

    block = {tuple(line.split()[:2]): line.split()[2] for line in readme_block()[1:] if len(line.split()) > 3}
    text = (ROOT / "README.md").read_text()
    a = text.index("| measure | sign | CMI x100 digits-bn | CMI x100 digits-nobn | CMI x100 pgdl_toy_data |")
    rows = [r.split("|")[1:-1] for r in text[a:text.index("\n\n", a)].split("\n")[2:]]
    builtin = sorted(n for n in measures.available() if measures.get(n).origin.startswith("measures."))
    assert sorted(r[0].strip().strip("`") for r in rows) == builtin  # one row per built-in measure
    for name, sign, bn, nobn, _toy in (map(str.strip, r) for r in rows):
        name = name.strip("`")
        assert int(sign) == measures.get(name).sign
        assert (bn, nobn) == (block[("digits-bn", name)], block[("digits-nobn", name)])
