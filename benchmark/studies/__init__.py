"""``pgdl-bench study NAME``: the seed papers' experiments, each one command with a report.

Every study module has ``NAME``, ``HELP``, ``RECIPES`` (at least ``full`` and ``small``: the small one
runs in the tests) and ``run(study, data) -> Report``; shared machinery is in ``common``. A study writes
``report.md``, its PNG figures and ``results.json`` under ``--out``, keeps every computed value in the
results store (a rerun resumes) and shows progress bars.
"""

from __future__ import annotations

from pathlib import Path

from task_loaders.errors import UsageError

from . import bn, fragmentation_dd, fragmentation_layers, fragmentation_training, fragmentation_weight_norm
from .common import Report, StudyError, StudyRun

STUDIES = {m.NAME: m for m in (fragmentation_dd, fragmentation_training, fragmentation_weight_norm,
                               fragmentation_layers, bn)}


def run_study(name: str, recipe: str = "full", out: str | Path | None = None, data: str | None = None,
              progress: bool = True, workers: int | None = None, store: str | None = None, **options) -> Report:
    """Run study ``name`` with one of its recipes; ``options`` go to studies that take more (bn)."""
    if name not in STUDIES:
        raise UsageError(f"unknown study '{name}' (studies: {', '.join(STUDIES)})")
    module = STUDIES[name]
    if recipe not in module.RECIPES:
        raise UsageError(f"study {name}: unknown recipe '{recipe}' (recipes: {', '.join(module.RECIPES)})")
    run = StudyRun(name, recipe, Path(out or Path("studies") / name), progress, workers, store)
    try:
        return module.run(run, data, **options)
    finally:
        run.close()


__all__ = ["STUDIES", "Report", "StudyError", "StudyRun", "run_study"]
