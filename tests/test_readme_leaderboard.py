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


def number(cell: str) -> float:
    """The mean of a "12.85 ± 8.34" cell."""
    return float(cell.split("±")[0])


def test_leaderboard_table_matches_the_main_job_block():
    cmi, best = {}, set()
    for line in readme_block():
        parts = line.split()
        if parts and parts[0] in ("digits-bn", "digits-nobn") and len(parts) > 3 and parts[2][0] in "-0123456789":
            cmi[(parts[0], parts[1])] = float(parts[2])
        if parts and parts[0] in ("digits-bn", "digits-nobn") and "gap noise ceiling" in line:
            cmi[(parts[0], "gap noise ceiling")] = float(line.split("gap noise ceiling")[1].split()[0])
    rows = [r for r in leaderboard_rows() if "ceiling" not in r[1]]
    ceiling = [r for r in leaderboard_rows() if r[1] == "gap noise ceiling"]
    assert len(rows) == len({m for _, m in cmi if "ceiling" not in m}) == 34
    means = []
    for rank, measure, _sign, bn, nobn, mean, versus, *_ in rows:
        assert number(bn) == cmi[("digits-bn", measure)], measure
        assert number(nobn) == cmi[("digits-nobn", measure)], measure
        assert abs(number(mean) - (number(bn) + number(nobn)) / 2) <= 0.006, measure
        means.append(number(mean))
        if versus == "best":
            best.add(measure)
    assert means == sorted(means, reverse=True)
    assert best == {rows[0][1]}
    assert number(ceiling[0][3]) == cmi[("digits-bn", "gap noise ceiling")]
    assert number(ceiling[0][4]) == cmi[("digits-nobn", "gap noise ceiling")]
