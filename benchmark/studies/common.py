"""What every study shares: values kept in the results store, work run in worker processes, reports.

A study computes values of models (a measure, an error rate) as *parts* of jobs, one job per model
(or checkpoint, or rescaled copy). ``StudyRun.compute`` skips every part the results store already
holds for this study and recipe, runs the rest through the executor (models in parallel, one torch
thread each) with a progress bar, and stores each value the moment it arrives: a killed study
resumes where it stopped. Models come from in-house zoos (``build_zoo``, itself resumable).

Store keys: ``task_fp`` = the study's fingerprint (study, recipe, zoo contents), ``task_name`` =
``study <name>``, ``model_id`` = the job's key, ``measure`` = the part's name, ``params`` = the
part's parameters, ``version`` = the measure's version and code hash, as ``score`` keys them
(``STUDY_VERSION`` for the study's own values).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

import measures as measure_registry
from measures.code_identity import code_version
from task_loaders import load_task
from task_loaders.zoo import get_recipe, zoo_cache_dir

from ..running.executor import Emitter, Job, LocalExecutor, PartResult, SerialExecutor, run_jobs
from ..scores.scoring import TaskArrays, conditional_mutual_information, kendall_tau
from ..running.store import ResultStore, params_key, task_fingerprint
from ..data.zoo_builder import build_zoo

STUDY_VERSION = "1"
STUDY_BUDGET_S = 3600.0  # per part; a study's parts are long (a model's fragmentation at every layer)
ERRORS = ("train_error", "test_error")  # parts that are not registered measures


class StudyError(RuntimeError):
    """A study that cannot run or whose computation failed; the message names the model and the part."""


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()[:24]


def zoo_task(recipe: str, data: str | None, progress: bool, executor=None):
    """Build (or reuse) an in-house zoo and load it. With ``data``, the zoo lives in its own folder,
    named by the data folder, so zoos built from different data never mix."""
    out = None
    if data is not None:
        tag = hashlib.sha256(str(Path(data).resolve()).encode()).hexdigest()[:8]
        out = zoo_cache_dir() / f"{recipe}@{tag}"
    return load_task(build_zoo(get_recipe(recipe), out, executor=executor, data=data, progress=progress))


# -- worker side --------------------------------------------------------------------------------

_TASKS: dict[str, Any] = {}


def cached_task(path: str):
    if path not in _TASKS:
        _TASKS.clear()
        _TASKS[path] = load_task(path)
    return _TASKS[path]


def zoo_network(task, model_id: str):
    """The trained network of a zoo model (the default ``network`` of a part)."""
    return task.load_model(model_id).network


def _resolve(spec: str) -> Callable:
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def value_of(name: str, params: dict, view, task) -> float:
    """A registered measure on ``view``, one of ``ERRORS`` (on the task's train or test split), or a
    study's own value ``"module:function"`` called as ``function(view, **params)``."""
    from task_loaders.training import accuracy

    if ":" in name:
        return float(_resolve(name)(view, **params))
    if name == "train_error":
        return 1.0 - accuracy(view.network, view.x_train, view.y_train)
    if name == "test_error":
        return 1.0 - accuracy(view.network, *task.test_split())
    return float(measure_registry.get(name)(view, **params))


def view_job(emit: Emitter, task_path: str, model_id: str, parts: dict[str, list],
             network: str = "benchmark.studies.common:zoo_network", network_kwargs: dict | None = None,
             sample_size: int | None = None) -> None:
    """Job function: the parts ``{part: [measure name, params]}`` of one model's network.

    ``network`` names a function ``(task, model_id, **network_kwargs) -> nn.Module`` (a zoo model, a
    checkpoint, a rescaled copy). The view carries the task's name and the model id, so every variant
    of one model is measured on the same training samples and fragmentation triplets.
    """
    from measures import ModelView

    emit.phase("load")
    task = cached_task(task_path)
    net = _resolve(network)(task, model_id, **(network_kwargs or {}))
    view = ModelView(net.eval(), task.train_split(), model_id=model_id, task_name=task.name)
    if sample_size is not None:
        view.sample_size = sample_size
    for part in emit.parts:
        name, params = parts[part]
        emit.run(part, lambda: value_of(name, params, view, task))


# -- parent side --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZooFragmentationRecipe:
    """A study recipe that measures fragmentation over a zoo: which zoo, the grid resolution, the triplets."""

    zoo: str
    resolution: int
    triplets: int


@dataclass
class Item:
    """One job of a study: ``key`` (the store's model id), the model, and its parts."""

    key: str
    model_id: str
    parts: dict[str, tuple[str, dict]]  # part -> (measure name, params)
    network: str = "benchmark.studies.common:zoo_network"
    network_kwargs: dict = field(default_factory=dict)


@dataclass
class StudyRun:
    name: str
    recipe: str
    out: Path
    progress: bool = True
    workers: int | None = None
    store_path: str | None = None

    _executor: Any = field(default=None, repr=False)

    def executor(self):
        """Worker processes, one torch thread each, kept for the whole study (their start-up is paid
        once); ``workers=0`` runs everything in this process."""
        if self._executor is None:
            self._executor = SerialExecutor() if self.workers == 0 else LocalExecutor(
                workers=self.workers, threads_per_worker=1, budget=STUDY_BUDGET_S, keep_alive=True)
        return self._executor

    def close(self) -> None:
        if hasattr(self._executor, "close"):
            self._executor.close()

    def zoo(self, recipe: str, data: str | None):
        return zoo_task(recipe, data, self.progress, self.executor())

    def compute(self, task, items: list[Item], desc: str, sample_size: int | None = None,
                allow_nan: bool = False, undefined: tuple[str, ...] = ()) -> dict[tuple[str, str], float]:
        """{(key, part): value} of every item; stored parts are reused, the rest computed in workers.

        ``allow_nan``: a NaN value is a result (an undefined statistic), not a failure. ``undefined``:
        parts whose errors mean "undefined here" (NaN, the error kept in the store), not a failure.
        """
        fp = fingerprint(self.name, self.recipe, task_fingerprint(task), sample_size)
        values: dict[tuple[str, str], float] = {}
        jobs, keyed = [], {}
        with ResultStore(self.store_path) as store:
            for item in items:
                pending = {}
                for part, (name, params) in item.parts.items():
                    own = name in ERRORS or ":" in name
                    version = STUDY_VERSION if own else code_version(measure_registry.get(name))
                    keyed[(item.key, part)] = (params_key({"measure": name, **params}), version)
                    row = store.rows(fp, part, *keyed[(item.key, part)]).get(item.key)
                    if row is not None and (row.status == "ok" or (part in undefined and row.status == "error")):
                        values[(item.key, part)] = math.nan if row.value is None else row.value
                    else:
                        pending[part] = [name, params]
                if pending:
                    jobs.append(Job(key=item.key, fn=view_job, parts=tuple(pending), kwargs=dict(
                        task_path=str(Path(task.path).resolve()), model_id=item.model_id, parts=pending,
                        network=item.network, network_kwargs=item.network_kwargs, sample_size=sample_size)))
            def on_result(result: PartResult) -> bool:
                params, version = keyed[(result.job, result.part)]
                value = float(result.value) if result.ok and result.value is not None else None
                if result.ok and value is not None and not math.isfinite(value) and not allow_nan:
                    result = PartResult(result.job, result.part, "error", None, f"not a finite number: {value}")
                store.put(fp, f"study {self.name}", result.job, result.part, params, version, result.status,
                          value, result.error, result.seconds)
                if result.ok or (result.status == "error" and result.part in undefined):
                    values[(result.job, result.part)] = math.nan if value is None else value
                    return True
                return False

            failures = run_jobs(self.executor(), jobs, on_result, total=sum(len(item.parts) for item in items),
                                initial=len(values), desc=f"{self.name}: {desc}", unit="value", progress=self.progress)
        if failures:
            first = failures[0]
            raise StudyError(f"study {self.name}: {len(failures)} values failed; {first.job} {first.part}: "
                             f"{first.error}")
        return values


# -- statistics -----------------------------------------------------------------------------------


def trained_models(task) -> list[str]:
    """The zoo's models that learned something: training accuracy above that of always predicting the
    most common training label.

    A model no better than that constant guess diverged (its ReLUs dead, its logits constant): its
    hidden representations are a single point, so no hidden-layer triplet spans a plane, and it says
    nothing about how a trained network's fragmentation relates to its gap. The studies leave such
    models out and say so.
    """
    labels = np.asarray(task.train_split()[1])
    constant = np.bincount(labels).max() / len(labels)
    return [m for m in task.model_ids if task.train_acc(m) > constant + 1e-9]


def subset_arrays(task, models: list[str]):
    """The scoring arrays of ``task`` restricted to ``models`` (for the CMI over a subset of a zoo)."""
    full = TaskArrays.from_task(task)
    index = [full.keys.index(f"model_{m}") for m in models]
    return TaskArrays(keys=[full.keys[i] for i in index], gaps=full.gaps[index], names=full.names,
                      codes={n: c[index] for n, c in full.codes.items()}, sizes=full.sizes)


def zoo_scores(task, models: list[str], series: dict[str, float]) -> dict:
    """CMI, Kendall's tau-b and Spearman's rho of ``series`` ({model id: value}) against the gap, over
    those of ``models`` where the value is defined (not NaN); ``n`` says how many that is."""
    kept = [m for m in models if not math.isnan(series[m])]
    if len(kept) < 2:
        return {"cmi": math.nan, "kendall_tau": math.nan, "spearman": math.nan, "n": len(kept)}
    values = np.array([series[m] for m in kept])
    gaps = np.array([task.gap(m) for m in kept])
    cmi = conditional_mutual_information({f"model_{m}": series[m] for m in kept}, subset_arrays(task, kept)).cmi
    return {"cmi": cmi, "kendall_tau": kendall_tau(values, gaps), "spearman": spearman(values, gaps), "n": len(kept)}


def spearman(x, y) -> float:
    """Spearman's rank correlation (scipy); NaN when either side is constant."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(spearmanr(x, y).statistic)


def partial_spearman(x, y, z) -> tuple[float, float]:
    """Partial rank correlation of x and y controlling for z, and its two-sided p-value.

    The ranks (average ranks for ties) of the three variables are correlated (Pearson, i.e. Spearman's
    rho), and r_xy.z = (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)); the p-value is from
    t = r sqrt((n - 3) / (1 - r^2)) with n - 3 degrees of freedom (one variable controlled for).
    """
    from scipy.stats import rankdata, t as student

    rx, ry, rz = (rankdata(np.asarray(v, float)) for v in (x, y, z))
    r = np.corrcoef(np.stack([rx, ry, rz]))
    rxy, rxz, ryz = r[0, 1], r[0, 2], r[1, 2]
    partial = float((rxy - rxz * ryz) / math.sqrt((1 - rxz**2) * (1 - ryz**2)))
    n = len(rx)
    if n <= 3 or abs(partial) >= 1:
        return partial, math.nan if n <= 3 else 0.0
    statistic = partial * math.sqrt((n - 3) / (1 - partial**2))
    return partial, float(2 * student.sf(abs(statistic), n - 3))


# -- the report -------------------------------------------------------------------------------------


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.{digits}g}"


class Report:
    """A study's Markdown report, its PNG figures and its JSON, written under ``out``."""

    def __init__(self, out: Path, title: str):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.lines = [f"# {title}", ""]
        self.data: dict[str, Any] = {}

    def text(self, *paragraphs: str) -> None:
        for p in paragraphs:
            self.lines += [p, ""]

    def table(self, header: list[str], rows: list[list]) -> None:
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + " --- |" * len(header))
        for row in rows:
            self.lines.append("| " + " | ".join(c if isinstance(c, str) else fmt(c) for c in row) + " |")
        self.lines.append("")

    def figure(self, fig, name: str, caption: str) -> Path:
        import matplotlib.pyplot as plt

        path = self.out / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.lines += [f"![{caption}]({name})", ""]
        return path

    def write(self) -> Path:
        (self.out / "report.md").write_text("\n".join(self.lines).rstrip() + "\n")
        (self.out / "results.json").write_text(json.dumps(self.data, indent=1, default=_json) + "\n")
        return self.out / "report.md"


def _json(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cpu_count() -> int:
    return os.cpu_count() or 1
