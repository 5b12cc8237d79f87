"""Every built-in measure's value on models of both embedded zoos, recorded before the ModelView refactor.

    python -m tests.reference_values            # (re)records tests/data/measure_values.json
    python -m tests.reference_values -m family:reference   # records those measures, keeps the others' values

The values in ``tests/data/measure_values.json`` were recorded on main at commit d564158 (before
``ModelView.forward`` and the faster silhouette and Jacobian); ``tests/test_reference_values.py``
checks that the measures still give them. The reference family's values (``measures/families/reference.py``)
were recorded with ``-m family:reference`` when the family was added. The measures of the winners family
(``measures/families/winners/``) are left out: their definitions change on purpose (fidelity to the winners' code);
so are the kV margins (``measures/families/kv_margins.py``), checked against their authors' code instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import measures
from benchmark.running.runner import model_view
from benchmark.data.zoo_builder import build_zoo
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--measure", action="append",
                        help="record only these (a name or family:NAME, repeatable), keeping the other recorded values")
    args = parser.parse_args(argv)
    names = compared_measures()
    wanted = [n for n in measures.select(args.measure) if n in names] if args.measure else names
    old = json.loads(PATH.read_text()) if args.measure else {"zoos": {}}
    recorded = {}
    for zoo in ZOOS:
        path = build_zoo(zoo, progress=False)
        recorded[zoo] = measure_values(path, load_task(path).model_ids, wanted)
        for model_id, values in old["zoos"].get(zoo, {}).items():
            recorded[zoo].setdefault(model_id, {}).update({k: v for k, v in values.items() if k not in wanted})
        print(zoo, len(recorded[zoo]), "models", flush=True)
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(json.dumps({"measures": sorted(names), "zoos": recorded}, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
