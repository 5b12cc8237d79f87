"""Build in-house zoos through the executor: models train in parallel, and a killed build resumes.

Each model is one job; a model whose folder is complete is never trained again. The zoo's
``model_configs.json`` is written once every model is done.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from task_loaders import TaskFormatError
from task_loaders.zoo import (
    DEFAULT_ZOOS, Recipe, finalize_zoo, finished_models, get_recipe, prepare_zoo, train_zoo_model, zoo_cache_dir,
)

from .executor import Emitter, Job, LocalExecutor, PartResult

TRAIN_BUDGET_S = 3600.0


def train_job(emit: Emitter, recipe_name: str, model_id: str, out: str) -> None:
    """Job function: train one model of a recipe (the part is called "train")."""
    recipe = get_recipe(recipe_name)
    emit.run("train", lambda: train_zoo_model(recipe, model_id, out))


class ZooBuildError(RuntimeError):
    pass


def build_zoo(recipe: Recipe | str, out: str | Path | None = None, executor=None, data=None, fresh: bool = False,
              progress: bool = True) -> Path:
    """Train every unfinished model of ``recipe`` into ``out`` (default: the zoo cache) and finalize it."""
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    out = Path(out) if out else zoo_cache_dir() / recipe.name
    if not fresh and (out / "model_configs.json").is_file() and (out / "zoo.json").is_file():
        prepare_zoo(recipe, out, data)  # checks the fingerprint
        if len(finished_models(recipe, out)) == len(recipe.models()):
            return out
    prepare_zoo(recipe, out, data, fresh=fresh)
    done = finished_models(recipe, out)
    jobs = [
        Job(key=f"{recipe.name}/model_{m}", fn=train_job, kwargs=dict(recipe_name=recipe.name, model_id=m, out=str(out)),
            parts=("train",))
        for m, _ in recipe.models() if m not in done
    ]
    failures: list[PartResult] = []
    bar = tqdm(total=len(recipe.models()), initial=len(done), desc=f"zoo {recipe.name}", unit="model",
               disable=not progress)

    def on_result(result: PartResult) -> None:
        bar.update(1)
        if not result.ok:
            failures.append(result)

    try:
        (executor or LocalExecutor(budget=TRAIN_BUDGET_S)).run(jobs, on_result)
    finally:
        bar.close()
    if failures:
        first = failures[0]
        raise ZooBuildError(f"zoo {recipe.name}: {len(failures)} models failed to train; {first.job}: {first.error}")
    return finalize_zoo(recipe, out)


def default_zoo_paths(executor=None, progress: bool = True) -> list[Path]:
    """The embedded default zoos, built into the cache on first use."""
    return [build_zoo(name, executor=executor, progress=progress) for name in DEFAULT_ZOOS]


__all__ = ["build_zoo", "default_zoo_paths", "train_job", "ZooBuildError", "TaskFormatError"]
