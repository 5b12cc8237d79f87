"""Every built-in measure's value on models of both embedded zoos, recorded before the ModelView refactor.

    python -m tests.reference_values            # (re)records tests/data/measure_values.json

The values in ``tests/data/measure_values.json`` were recorded on main at commit d564158 (before
``ModelView.forward`` and the faster silhouette and Jacobian); ``tests/test_reference_values.py``
checks that the measures still give them. The measures of the winners family
(``measures/families/winners/``) are left out: their definitions change on purpose (fidelity to the winners' code);
so are the kV margins (``measures/families/kv_margins.py``), added after the recording and checked against
their authors' code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import measures
from benchmark.runner import model_view
from benchmark.zoo_builder import build_zoo
from task_loaders import load_task

PATH = Path(__file__).parent / "data" / "measure_values.json"
ZOOS = ("digits-bn", "digits-nobn")
# The winners' definitions change on purpose (fidelity to their code); the kV margins came after the
# recording and are checked against their authors' code instead (tests/test_kv_margins.py, docs/fidelity.md).
EXCLUDED_PACKAGES = ("measures.families.winners", "measures.families.kv_margins")


def compared_measures() -> list[str]:
    return [n for n in measures.available()
            if measures.get(n).fn.__module__.startswith("measures.")
            and not measures.get(n).fn.__module__.startswith(EXCLUDED_PACKAGES)]


def measure_values(task_path, model_ids, names) -> dict[str, dict[str, float]]:
    """{model_id: {measure: value}} at the measures' defaults, on the models ``model_ids`` of a task."""
    task = load_task(task_path)
    out = {}
    for model_id in model_ids:
        view = model_view(task, model_id)
        out[model_id] = {name: float(measures.get(name)(view)) for name in names}
    return out


def main() -> int:
    names = compared_measures()
    recorded = {}
    for zoo in ZOOS:
        path = build_zoo(zoo, progress=False)
        recorded[zoo] = measure_values(path, load_task(path).model_ids, names)
        print(zoo, len(recorded[zoo]), "models", flush=True)
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(json.dumps({"measures": names, "zoos": recorded}, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
