"""The output blocks of README.md and docs/ are what their commands print (scripts/docs.py, `make docs`).

The fast tests rerun every block that needs no shared home and is not marked slow, and compare it with
the document; they recompute the main job's deterministic rows, its ceilings and fingerprints in this
process and compare them with its block; and they check that the leaderboard page ranks the main job's
numbers. The slow test reruns every block in document order, the main job included.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmark import cli
from scripts import docs
from task_loaders.fingerprint import short_fingerprint
from task_loaders.pinned import PINNED_FINGERPRINTS

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT.parent / "shared" / "fixtures" / "pgdl_toy_data"
CHEAP_DETERMINISTIC = ("weight_norm", "distance_from_init", "parameter_count", "path_norm", "log_sum_frobenius")
# the "vs best" cell (benchmark.leaderboard.text.versus_best), which depends on the other measures scored
VERSUS = re.compile(r"  (best|not separated \(p = \d\.\d\d\)|worse \(p = \d\.\d\d\))  ")


def all_blocks() -> list[docs.Block]:
    return [b for path in docs.documents() for b in docs.find_blocks(path)]


def fast_blocks() -> list[docs.Block]:
    return [b for b in all_blocks() if not b.slow and "home" not in b.options]


def block_lines(document: str, command: str) -> list[str]:
    """The output lines of the block of ``command`` in ``document`` (its ``$ command`` line left out)."""
    (block,) = [b for b in docs.find_blocks(ROOT / document) if b.command == command]
    return block.body.rstrip("\n").split("\n")[1:]


def test_every_document_block_parses_and_names_a_command():
    blocks = all_blocks()
    assert any(b.path.name == "README.md" for b in blocks)
    assert all(b.command.strip() for b in blocks)


def test_normalize_hides_what_varies_between_runs():
    text = ("x in /tmp/h1/results.sqlite (12.5 s); 3 min ago 3+3f6114311ead; 2 passed in 2.74s\n"
            "budget of 5 s [m]   ")
    assert docs.normalize(text, {"/tmp/h1": "$PGDL_BENCH_HOME"}) == (
        "x in $PGDL_BENCH_HOME/results.sqlite (N s); N min ago 3+<code hash> ; 2 passed in N s\nbudget of 5 s [m]")


@pytest.mark.parametrize("block", fast_blocks(), ids=lambda b: b.command[:60])
def test_fast_block_is_what_its_command_prints(block):
    if "../shared/fixtures" in block.command and not TOY.exists():
        pytest.skip("the PGDL toy task is not at ../shared/fixtures/pgdl_toy_data")
    runner = docs.Runner()
    try:
        printed = docs.render(block, runner.output(block))
    finally:
        runner.close()
    assert printed.rstrip("\n") == block.body.join(["```" + block.options.get("lang", "") + "\n", "```"]), \
        f"{block.name} differs from what it prints now: run `make docs`"


MAIN_JOB = ("docs/reports/main_job.md", "pgdl-bench score")


def test_main_job_block_lists_every_builtin_measure_on_both_zoos():
    import measures

    builtin = sorted(n for n in measures.available() if measures.get(n).origin.startswith("measures."))
    block = block_lines(*MAIN_JOB)
    rows = [line.split()[:2] for line in block[1:] if line.split()[:1] in (["digits-bn"], ["digits-nobn"])
            and " fingerprint " not in line and "noise ceiling" not in line]
    assert rows == [[zoo, m] for zoo in ("digits-bn", "digits-nobn") for m in builtin], \
        "the main job's block is stale: run `make docs`"


def test_main_job_rows_of_deterministic_measures_ceilings_and_fingerprints(capsys):
    """Recomputed here: the rows but their "vs best" (which depends on the other measures scored)."""
    block = block_lines(*MAIN_JOB)
    args = ["score", "--backend", "serial", "-q"] + [a for m in CHEAP_DETERMINISTIC for a in ("-m", m)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out.rstrip("\n").split("\n")
    rows = [line for line in out if line.split()[:1] in (["digits-bn"], ["digits-nobn"])
            and line.split()[1] in CHEAP_DETERMINISTIC]
    assert len(rows) == 2 * len(CHEAP_DETERMINISTIC)
    for line in rows:
        shown = [b for b in block if b.split()[:2] == line.split()[:2]]
        assert len(shown) == 1, line
        assert VERSUS.sub("  ", shown[0]).split() == VERSUS.sub("  ", line).split()
    for line in out:
        if "gap noise ceiling" in line or " fingerprint " in line:
            assert line in block, line
    for zoo, fingerprint in PINNED_FINGERPRINTS.items():
        assert f"{zoo:<11}  fingerprint {short_fingerprint(fingerprint)} (pinned zoo, as recorded)" in block


def _mean(cell: str) -> float:
    """The mean of a "12.85 ± 8.34" cell."""
    return float(cell.split("±")[0])


def test_leaderboard_page_ranks_the_main_jobs_numbers():
    main = {}
    for line in block_lines(*MAIN_JOB):
        parts = line.split()
        # task, measure, K (repeats used), CMI x100 ...
        if parts[:1] in (["digits-bn"], ["digits-nobn"]) and len(parts) > 4 and parts[2].isdigit():
            main[(parts[0], parts[1])] = float(parts[3])
        if "gap noise ceiling" in line:
            main[(parts[0], "gap noise ceiling")] = float(line.split("gap noise ceiling")[1].split()[0])
    (table,) = [b for b in docs.find_blocks(ROOT / "docs/reports/leaderboard.md") if "sed" in b.command]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.body.split("\n")[3:]
            if line.startswith("| ")]
    measures_rows = [r for r in rows if "ceiling" not in r[1]]
    assert len(measures_rows) == len({m for _, m in main if "ceiling" not in m})
    means = []
    for _rank, measure, _sign, bn, nobn, mean, *_ in rows:
        assert _mean(bn) == main[("digits-bn", measure)], measure
        assert _mean(nobn) == main[("digits-nobn", measure)], measure
        assert abs(_mean(mean) - (_mean(bn) + _mean(nobn)) / 2) <= 0.006, measure
        if "ceiling" not in measure:
            means.append(_mean(mean))
    assert means == sorted(means, reverse=True)


def test_guide_speaks_of_the_project_as_it_is():
    """No internal issue numbers and no hand-kept history in the guide."""
    text = (ROOT / "README.md").read_text()
    assert not re.search(r"\bissue \d+|#\d{1,4}\b|\bformerly\b|\bused to\b|\bold main\b", text)


@pytest.mark.slow
def test_every_block_is_what_its_command_prints():
    """Every block of every document, in order, the main job from an empty store included."""
    differed = docs.regenerate(docs.documents(), check=True, log=lambda text: None)
    assert differed == [], f"run `make docs`: {differed}"
