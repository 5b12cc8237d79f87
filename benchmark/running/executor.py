"""Run jobs in worker processes, with a time budget per part, crash recovery and a Dask backend.

A ``Job`` is a top-level function ``fn(emit, **kwargs)`` that produces the named *parts* listed in
``emit.parts`` (for a model: one value per measure) and reports each through ``emit`` as soon as it
exists. A retried job gets only the parts still missing. The executor hands
every part result to ``on_result`` in the parent, which stores it at once: nothing finished is lost.

Local backend: long-lived worker processes (started with ``subprocess``, so they work inside daemonic
Dask workers too), one job at a time each. A part that runs past its budget gets its worker killed
and is recorded as a timeout; the job's remaining parts go back to the queue. A worker that dies
(killed, segfault, out of memory, ``os._exit``) is blamed on the part it was running: the job's
other parts go back to the queue (that part last) and are computed on a fresh worker; only a part
that its worker died in ``max_attempts`` times is recorded as failed. Workers die with their parent
(``benchmark.running.worker``) and print to stderr, never to the parent's stdout.
Dask backend: each job is a Dask task that runs it in such a worker on the Dask worker's machine.
The executor knows nothing of measures: the zoo trainer runs through it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, Pipe, wait
from typing import Any, Callable, Iterable

import torch

from task_loaders.errors import UsageError

from .plugins import load_plugin
from .streams import stdout_to_stderr

DEFAULT_BUDGET_S = 300.0  # the competition's per-model budget
STARTUP_GRACE_S = 120.0  # a fresh worker's interpreter start and imports do not count against a budget


@dataclass(frozen=True)
class Job:
    key: str
    fn: Callable[..., None]  # a top-level (importable) function fn(emit, **kwargs)
    kwargs: dict = field(default_factory=dict)
    parts: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()  # modules or .py files to import first (plugins registering measures)
    attempt: int = 1


@dataclass
class PartResult:
    job: str
    part: str
    status: str  # "ok", "error", "bad_input", "timeout"
    value: Any = None
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Emitter:
    """What a job function reports through: phases (each restarts the budget) and part results."""

    def __init__(self, send: Callable[[tuple], None], job: Job):
        self._send = send
        self.job = job
        self.parts = job.parts  # what this run of the job must produce

    def phase(self, name: str) -> None:
        """Start a phase of work that is not a part (loading a model): the budget clock restarts."""
        self._send(("start", self.job.key, name))

    def run(self, part: str, fn: Callable[[], Any]) -> Any:
        """Compute one part: budget restarted, exceptions reported as that part's error."""
        self._send(("start", self.job.key, part))
        start = time.perf_counter()
        try:
            value = fn()
        except (Exception, SystemExit) as exc:  # third-party code (sys.exit too): report, go on with the next part
            self._send(("part", self.job.key, part, "error", None, _describe(exc), time.perf_counter() - start))
            return None
        self._send(("part", self.job.key, part, "ok", value, "", time.perf_counter() - start))
        return value


class JobFailed(Exception):
    """Raised by a job function to fail all its unfinished parts with one status and message."""

    def __init__(self, message: str, status: str = "error"):
        super().__init__(message)
        self.status = status


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def import_plugin(spec: str) -> None:
    """Load a plugin spec once per process (see ``benchmark.running.plugins.load_plugin``)."""
    load_plugin(spec)


def run_job_here(job: Job, send: Callable[[tuple], None]) -> None:
    """Run one job in this process, reporting through ``send``; used by workers and the serial backend."""
    try:
        for spec in job.imports:
            import_plugin(spec)
        job.fn(Emitter(send, job), **job.kwargs)
    except JobFailed as exc:
        send(("job_failed", job.key, exc.status, str(exc)))
    except (Exception, SystemExit) as exc:
        send(("job_failed", job.key, "error", _describe(exc)))
    send(("done", job.key))


# ---------------------------------------------------------------------------------------------


class _Tracker:
    """Bookkeeping shared by the backends: which parts of which job are done."""

    def __init__(self, jobs: Iterable[Job], on_result: Callable[[PartResult], None]):
        self.jobs = {job.key: job for job in jobs}
        self.done: dict[str, set[str]] = {key: set() for key in self.jobs}
        self.on_result = on_result

    def record(self, result: PartResult) -> None:
        if result.part in self.done[result.job]:
            return
        self.done[result.job].add(result.part)
        self.on_result(result)

    def remaining(self, key: str) -> tuple[str, ...]:
        return tuple(p for p in self.jobs[key].parts if p not in self.done[key])

    def fail_remaining(self, key: str, status: str, error: str) -> None:
        for part in self.remaining(key):
            self.record(PartResult(key, part, status, error=error))

    def handle(self, message: tuple) -> str | None:
        """Apply a worker message; returns the job key when the job is complete."""
        kind, key = message[0], message[1]
        if kind == "part":
            _, _, part, status, value, error, seconds = message
            self.record(PartResult(key, part, status, value, error, seconds))
        elif kind == "job_failed":
            self.fail_remaining(key, message[2], message[3])
        elif kind == "done":
            self.fail_remaining(key, "error", "the job ended without producing this result")
            return key
        return None


class SerialExecutor:
    """In this process, one job after another: no budget enforcement (for debugging and tiny runs)."""

    def run(self, jobs: list[Job], on_result: Callable[[PartResult], None]) -> None:
        tracker = _Tracker(jobs, on_result)
        with stdout_to_stderr():  # a measure that prints must not corrupt --json output
            for job in jobs:
                run_job_here(job, tracker.handle)


class _Worker:
    def __init__(self, threads: int, gpu: str | None = None):
        parent, child = Pipe(duplex=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        # The kernel's parent-death signal follows the thread that started the child: only the main
        # thread lives as long as this process (Dask runs tasks on pool threads that come and go).
        on_linux_main = sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread()
        self.gpu = gpu
        if gpu is not None:  # this worker sees one GPU: its "cuda" is that one
            env["CUDA_VISIBLE_DEVICES"] = gpu
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmark.running.worker", str(child.fileno()), str(os.getpid()),
             "pdeathsig" if on_linux_main else "poll"],
            pass_fds=(child.fileno(),),
            env=env,
            start_new_session=True,  # Ctrl-C reaches the parent only; the parent stops its workers
        )
        child.close()
        self.conn: Connection = parent
        self.conn.send(("init", list(sys.path), threads))
        self.job: Job | None = None
        self.part: str | None = None
        self.deadline = float("inf")

    def assign(self, job: Job, budget: float) -> None:
        # Until the job reports its first phase, the clock also covers start-up and plugin imports.
        self.job = job
        self.part = None
        self.deadline = time.monotonic() + budget + STARTUP_GRACE_S
        self.conn.send(job)

    def kill(self) -> None:
        try:
            self.process.kill()
        except ProcessLookupError:
            pass
        self.process.wait()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()


class LocalExecutor:
    """A pool of worker processes with per-part budgets and crash recovery (see module docstring)."""

    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None,
                 budget: float = DEFAULT_BUDGET_S, max_attempts: int = 2, keep_alive: bool = False,
                 gpus: list[str] | None = None):
        cores = os.cpu_count() or 1
        self.gpus = list(gpus or [])  # one worker per GPU when given
        self.workers = len(self.gpus) if self.gpus else max(1, workers or cores)
        self.threads = max(1, threads_per_worker or cores // self.workers)
        self.budget = budget
        self.max_attempts = max_attempts
        self.keep_alive = keep_alive  # keep idle workers between run() calls (saves their start-up)
        self._pool: list[_Worker] = []
        self._crashes: dict[tuple[str, str], int] = {}  # (job, part or phase) -> worker deaths while running it

    def _free_gpu(self, pool: list[_Worker]) -> str | None:
        taken = {w.gpu for w in pool}
        return next((g for g in self.gpus if g not in taken), None)

    def run(self, jobs: list[Job], on_result: Callable[[PartResult], None]) -> None:
        tracker = _Tracker(jobs, on_result)
        queue = [job for job in jobs if job.parts]
        pool = self._pool
        self._crashes.clear()
        try:
            while queue or any(w.job is not None for w in pool):
                for worker in list(pool):
                    if worker.job is None and queue:
                        self._assign(worker, queue.pop(0), tracker, queue, pool)
                while queue and len(pool) < self.workers:
                    worker = _Worker(self.threads, self._free_gpu(pool))
                    pool.append(worker)
                    self._assign(worker, queue.pop(0), tracker, queue, pool)
                busy = [w for w in pool if w.job is not None]
                timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
                ready = wait([w.conn for w in busy], timeout=timeout)
                for worker in busy:
                    if worker.conn in ready:
                        self._receive(worker, tracker, queue, pool)
                now = time.monotonic()
                for worker in list(pool):
                    if worker.job is not None and now >= worker.deadline:
                        self._timeout(worker, tracker, queue, pool)
        finally:
            for worker in list(pool):
                if worker.job is not None:  # interrupted mid-job
                    worker.kill()
                    pool.remove(worker)
                elif not self.keep_alive:
                    worker.stop()
                    pool.remove(worker)

    def close(self) -> None:
        """Stop the idle workers that ``keep_alive`` kept."""
        while self._pool:
            self._pool.pop().stop()

    def _assign(self, worker: _Worker, job: Job, tracker: _Tracker, queue: list[Job], pool: list[_Worker]) -> None:
        try:
            worker.assign(job, self.budget)
        except OSError:  # a kept idle worker died meanwhile: its pipe is broken
            self._crashed(worker, tracker, queue, pool)

    def _receive(self, worker: _Worker, tracker: _Tracker, queue: list[Job], pool: list[_Worker]) -> None:
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "start":
                    worker.part = message[2]
                    worker.deadline = time.monotonic() + self.budget
                elif tracker.handle(message) is not None:
                    worker.job = None
                    worker.deadline = float("inf")
                    return
        except (EOFError, OSError):
            self._crashed(worker, tracker, queue, pool)

    def _replace(self, worker: _Worker, pool: list[_Worker]) -> None:
        worker.kill()
        pool.remove(worker)

    def _crashed(self, worker: _Worker, tracker: _Tracker, queue: list[Job], pool: list[_Worker]) -> None:
        """A worker died: blame the part it was running, requeue the job's other parts (that part last).

        A death in a phase that is not a part (loading the model) is the whole job's: every part needs it.
        """
        job, running = worker.job, worker.part
        self._replace(worker, pool)
        remaining = tracker.remaining(job.key)
        if not remaining:
            return
        suspect = running if running in remaining else None
        blame = (job.key, running or "start-up")
        crashes = self._crashes[blame] = self._crashes.get(blame, 0) + 1
        if crashes >= self.max_attempts:
            code = worker.process.returncode
            cause = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            message = f"worker process died ({cause}) {crashes} times while running {blame[1]}"
            if suspect is None:
                tracker.fail_remaining(job.key, "error", message)
                return
            tracker.record(PartResult(job.key, suspect, "error", error=message))
            remaining = tracker.remaining(job.key)
        order = tuple(p for p in remaining if p != suspect) + tuple(p for p in remaining if p == suspect)
        if order:
            queue.insert(0, replace(job, parts=order, attempt=job.attempt + 1))

    def _timeout(self, worker: _Worker, tracker: _Tracker, queue: list[Job], pool: list[_Worker]) -> None:
        job, part = worker.job, worker.part
        self._replace(worker, pool)
        message = f"exceeded the time budget of {self.budget:g} s"
        if part in tracker.remaining(job.key):
            tracker.record(PartResult(job.key, part, "timeout", error=message, seconds=self.budget))
        else:  # a phase such as loading the model ran out of time: every unfinished part fails
            tracker.fail_remaining(job.key, "timeout", f"{message} in phase '{part or 'start'}'")
        remaining = tracker.remaining(job.key)
        if remaining:
            queue.insert(0, replace(job, parts=remaining))


_ISOLATED: dict[tuple[float, int], LocalExecutor] = {}


def _run_isolated(job: Job, budget: float, threads: int) -> list[PartResult]:
    """A Dask task: run one job in a local worker process (budget enforced), return its results.

    The worker process is kept for the next task on this Dask worker; it exits with it (pipe EOF).
    """
    executor = _ISOLATED.setdefault((budget, threads), LocalExecutor(1, threads, budget, keep_alive=True))
    results: list[PartResult] = []
    executor.run([job], results.append)
    return results


class DaskExecutor:
    """Jobs as tasks on an existing Dask distributed cluster; results stored as each job finishes."""

    def __init__(self, scheduler: str, budget: float = DEFAULT_BUDGET_S, threads_per_worker: int = 1):
        self.scheduler = scheduler
        self.budget = budget
        self.threads = threads_per_worker

    def run(self, jobs: list[Job], on_result: Callable[[PartResult], None]) -> None:
        try:
            from distributed import Client, as_completed
        except ImportError:  # pragma: no cover - optional extra
            raise UsageError("the Dask backend needs the 'dask' extra: pip install 'pgdl-bench[dask]'") from None
        tracker = _Tracker(jobs, on_result)
        try:
            client = Client(self.scheduler, timeout="30s")
        except OSError as exc:
            raise UsageError(f"--scheduler {self.scheduler}: cannot connect to a Dask scheduler ({exc})") from None
        with client:
            futures = {
                client.submit(_run_isolated, job, self.budget, self.threads, pure=False, key=f"pgdl-{job.key}-{i}"): job
                for i, job in enumerate(jobs)
                if job.parts
            }
            for future in as_completed(futures):
                job = futures[future]
                try:
                    for result in future.result():
                        tracker.record(result)
                except Exception as exc:  # the task itself failed on the cluster
                    tracker.fail_remaining(job.key, "error", f"Dask task failed: {_describe(exc)}")
                tracker.fail_remaining(job.key, "error", "the job ended without producing this result")


def make_executor(backend: str = "local", workers: int | None = None, threads_per_worker: int | None = None,
                  budget: float = DEFAULT_BUDGET_S, scheduler: str | None = None, device: str = "cpu"):
    """The executor of ``--backend``; with ``device="cuda"`` and several GPUs, a local pool of one worker per GPU."""
    if backend == "local":
        gpus = None
        if device == "cuda" and workers is None and torch.cuda.device_count() > 1:
            gpus = [str(i) for i in range(torch.cuda.device_count())]
        return LocalExecutor(workers, threads_per_worker, budget, gpus=gpus)
    if backend == "serial":
        return SerialExecutor()
    if backend == "dask":
        if not scheduler:
            raise UsageError("--backend dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
        return DaskExecutor(scheduler, budget, threads_per_worker or 1)
    raise UsageError(f"unknown backend {backend!r} (local, serial, dask)")


def run_jobs(executor, jobs: list[Job], on_result: Callable[[PartResult], bool | None], *, total: int,
             initial: int = 0, desc: str, unit: str, progress: bool = True) -> list[PartResult]:
    """Run ``jobs`` through ``executor`` with one progress bar (ETA included) of ``total`` parts, ``initial``
    of them done before: every part result goes to ``on_result`` (which stores it) and counts on the bar;
    returns the results ``on_result`` called failures (returned False), or that were not ok when it returns
    None. The one loop behind measures, studies and zoo builds."""
    from tqdm import tqdm

    failures: list[PartResult] = []
    bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not progress or total == initial,
               leave=False)

    def handle(result: PartResult) -> None:
        ok = on_result(result)
        if (not result.ok) if ok is None else not ok:
            failures.append(result)
        bar.update(1)

    try:
        if jobs:
            executor.run(jobs, handle)
    finally:
        bar.close()
    return failures
