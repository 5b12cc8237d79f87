"""The README's fidelity table repeats docs/fidelity.md's digits-nobn table: same measures, same numbers."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _table(text: str, header: str) -> dict[str, list[str]]:
    start = text.index(header)
    rows = {}
    for line in text[start:].split("\n")[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_readme_fidelity_table_matches_docs_fidelity():
    readme = _table((ROOT / "README.md").read_text(),
                    "| measure | models | Spearman | median ratio | largest deviation | the authors' code run with |")
    docs_text = (ROOT / "docs" / "fidelity.md").read_text()
    digits = docs_text[docs_text.index("digits-nobn:\n"):]
    docs = _table(digits, "| measure | models | Spearman port vs authors |")
    assert list(readme) == list(docs) and len(readme) == 8
    for name, (models, rho, ratio, deviation, _) in readme.items():
        d_models, d_rho, d_ratio, d_deviation = docs[name][:4]
        assert (models, rho, ratio) == (d_models, d_rho, d_ratio), name
        assert d_deviation.startswith(deviation.split(" (")[0]), name
    # every port reaches the issue's bar against a deterministic run of its authors' code
    assert all(float(rho) >= 0.95 and abs(float(ratio) - 1) <= 0.1 for _, rho, ratio, _, _ in readme.values())
