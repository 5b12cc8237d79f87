"""Build in-house zoos through the executor: models train in parallel, and a killed build resumes.

Each model is one job; a model whose folder is complete is never trained again. The zoo's
``model_configs.json`` is written once every model is done. ``build_replicates`` trains the same
recipe with several training seeds into a replicate set. The embedded default zoos are not built
here at all: ``default_zoo_paths`` returns the pinned copies shipped with the package.
"""

from __future__ import annotations

from pathlib import Path

from task_loaders import TaskFormatError
from task_loaders.pinned import pinned_zoo
from task_loaders.replicates import member_name, write_manifest
from task_loaders.zoo import (
    DEFAULT_ZOOS, Recipe, finalize_zoo, finished_models, get_recipe, prepare_zoo, train_zoo_model, zoo_cache_dir,
)

from ..running.executor import Emitter, Job, LocalExecutor, run_jobs

TRAIN_BUDGET_S = 3600.0


def train_job(emit: Emitter, recipe_name: str, model_id: str, out: str, seed: int | None = None) -> None:
    """Job function: train one model of a recipe, from training seed ``seed`` (the part is called "train")."""
    recipe = get_recipe(recipe_name)
    recipe = recipe if seed is None else recipe.with_seed(seed)
    emit.run("train", lambda: train_zoo_model(recipe, model_id, out))


class ZooBuildError(RuntimeError):
    pass


def build_zoo(recipe: Recipe | str, out: str | Path | None = None, executor=None, data=None, fresh: bool = False,
              progress: bool = True) -> Path:
    """Train every unfinished model of ``recipe`` into ``out`` (default: the zoo cache) and finalize it."""
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    out = Path(out) if out else zoo_cache_dir() / recipe.build_name
    if not fresh and (out / "model_configs.json").is_file() and (out / "zoo.json").is_file():
        prepare_zoo(recipe, out, data)  # checks the fingerprint
        if len(finished_models(recipe, out)) == len(recipe.models()):
            return out
    prepare_zoo(recipe, out, data, fresh=fresh)
    done = finished_models(recipe, out)
    jobs = [
        Job(key=f"{recipe.name}/model_{m}", fn=train_job,
            kwargs=dict(recipe_name=recipe.name, model_id=m, out=str(out), seed=recipe.training_seed),
            parts=("train",))
        for m, _ in recipe.models() if m not in done
    ]
    failures = run_jobs(executor or LocalExecutor(budget=TRAIN_BUDGET_S), jobs, lambda result: None,
                        total=len(recipe.models()), initial=len(done), desc=f"zoo {recipe.name}", unit="model",
                        progress=progress)
    if failures:
        first = failures[0]
        raise ZooBuildError(f"zoo {recipe.name}: {len(failures)} models failed to train; {first.job}: {first.error}")
    return finalize_zoo(recipe, out)


def build_replicates(recipe: Recipe | str, seed: int, replicates: int, out: str | Path | None = None, executor=None,
                     data=None, fresh: bool = False, progress: bool = True) -> Path:
    """Train ``recipe`` from training seeds ``seed .. seed + replicates - 1`` into a replicate set:
    ``out/<recipe>-seed<S>/`` per seed and ``out/replicates.json`` (default ``out``: the zoo cache's
    ``<recipe>-seeds<first>-<last>``). Every member resumes like ``build_zoo``."""
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if replicates < 1:
        raise ValueError(f"--replicates must be at least 1, not {replicates}")
    seeds = list(range(seed, seed + replicates))
    out = Path(out) if out else zoo_cache_dir() / f"{recipe.name}-seeds{seeds[0]}-{seeds[-1]}"
    if out.exists() and any(out.iterdir()) and not (out / "replicates.json").is_file() and not fresh:
        raise TaskFormatError(f"{out}: not empty and not a replicate set; choose another --out")
    write_manifest(out, recipe.name, seeds)
    for s in seeds:
        build_zoo(recipe.with_seed(s), out / member_name(recipe.name, s), executor, data=data, fresh=fresh,
                  progress=progress)
    return out


def default_zoo_paths() -> list[Path]:
    """The embedded default zoos: the pinned copies shipped with the package, read in place."""
    paths = []
    for name in DEFAULT_ZOOS:
        path = pinned_zoo(name)
        if path is None:
            raise TaskFormatError(f"the pinned zoo '{name}' is missing from this installation "
                                  f"(expected in task_loaders/zoos_pinned/{name}); reinstall pgdl-bench")
        paths.append(path)
    return paths


__all__ = ["build_zoo", "build_replicates", "default_zoo_paths", "train_job", "ZooBuildError", "TaskFormatError"]
