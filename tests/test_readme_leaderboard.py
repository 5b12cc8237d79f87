"""The README's leaderboard table agrees with its main-job block: `pgdl-bench leaderboard` ranks the
same stored results that `pgdl-bench score` prints (means over the same repeats)."""

from __future__ import annotations

from pathlib import Path

from test_readme_main_job import readme_block

ROOT = Path(__file__).resolve().parents[1]


def leaderboard_rows() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    start = text.index("The real `leaderboard.md`")
    header = text.index("| # | measure |", start)
    lines = text[header:].split("\n")
    rows = []
    for line in lines[2:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_leaderboard_table_matches_the_main_job_block():
    cmi = {}
    for line in readme_block():
        parts = line.split()
        if parts and parts[0] in ("digits-bn", "digits-nobn") and len(parts) > 3 and parts[2][0] in "-0123456789":
            cmi[(parts[0], parts[1])] = float(parts[2])
    rows = leaderboard_rows()
    assert len(rows) == len({m for _, m in cmi}) == 34
    means = []
    for rank, measure, _sign, bn, nobn, mean, *_ in rows:
        assert float(bn) == cmi[("digits-bn", measure)], measure
        assert float(nobn) == cmi[("digits-nobn", measure)], measure
        assert abs(float(mean) - (float(bn) + float(nobn)) / 2) <= 0.006, measure
        means.append(float(mean))
    assert means == sorted(means, reverse=True)
