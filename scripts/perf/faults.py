"""Fault injection: kill the main process, a worker or a Dask worker mid-run; nothing may be lost or redone.

    python -m scripts.perf.faults [--task DIR] [--rounds 9] [--seed 0] [-m MEASURE ...] [--json out.json]

Not a unit test: it runs ``python -m benchmark score`` on a digits zoo (by default the embedded
``digits-bn``, built into the zoo cache on first use) with a cheap subset of measures, first once
uninterrupted (the reference), then round after round on a fresh store, each round killing, with
SIGKILL and once a random number of results has been stored, one of

* ``main``: the main process alone (its workers must then exit by themselves), then resume the run;
* ``worker``: one of the run's worker processes (the run must finish by itself), then run again;
* ``dask-worker``: one worker process of a local Dask cluster the run uses (``--backend dask``).

After each round's last run it checks that every stored value equals the reference exactly, that
each (model, measure) was written to the store once (a trigger counts the writes: a result that was
already stored and got computed again would be written twice), that no worker process outlived the
process that started it, and that every run that was not killed exited 0. It prints one line per
round and the totals; the exit status is 1 when anything was lost, written twice or orphaned.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, closing
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MEASURES = ("weight_norm", "distance_from_init", "log_sum_spectral", "inverse_margin")
KINDS = ("main", "worker", "dask-worker")
WORKERS = 2
ORPHAN_WAIT_S = 10.0
RUN_TIMEOUT_S = 600.0
COUNT_WRITES = """
CREATE TABLE IF NOT EXISTS writes (model_id TEXT, measure TEXT, created REAL);
CREATE TRIGGER IF NOT EXISTS count_writes AFTER INSERT ON results
BEGIN INSERT INTO writes VALUES (new.model_id, new.measure, new.created); END;
"""


def _psutil():
    try:
        import psutil
    except ImportError:
        sys.exit("scripts.perf.faults: needs psutil and distributed: pip install -e '.[dask]'")
    return psutil


def _score_command(task: Path, measures, store: Path, out: Path, scheduler: str | None) -> list[str]:
    command = [sys.executable, "-m", "benchmark", "score", str(task), *(a for m in measures for a in ("-m", m)),
               "-q", "--json", "--store", str(store), "--out", str(out), "--workers", str(WORKERS), "--threads", "1"]
    return command + (["--backend", "dask", "--scheduler", scheduler] if scheduler else [])


def _new_store(path: Path) -> None:
    """An empty results store whose every write (insert or replace) is also counted in ``writes``."""
    from benchmark.running.store import SCHEMA

    with closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA + COUNT_WRITES)


def _query(path: Path, sql: str) -> list[tuple]:
    try:
        with closing(sqlite3.connect(path, timeout=30)) as db:
            return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # locked for a moment by the writer
        return []


def _stored(path: Path) -> dict[tuple[str, str], tuple[str, float | None]]:
    return {(m, name): (status, value)
            for m, name, status, value in _query(path, "SELECT model_id, measure, status, value FROM results")}


def _gone(psutil, pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _orphans(psutil, pids: set[int]) -> int:
    """How many of these processes are still alive ORPHAN_WAIT_S after their parent died (then killed)."""
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while time.monotonic() < deadline and not all(_gone(psutil, p) for p in pids):
        time.sleep(0.1)
    alive = [p for p in pids if not _gone(psutil, p)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    return len(alive)


def _workers_of(psutil, pid: int) -> set[int]:
    """Our worker processes below ``pid`` (``python -m benchmark.running.worker``)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return set()
    found = set()
    for child in children:
        try:
            if "benchmark.running.worker" in child.cmdline():
                found.add(child.pid)
        except psutil.Error:
            pass
    return found


def _run(command: list[str], log) -> dict:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    log.write(result.stderr)
    try:
        summary = json.loads(result.stdout)
    except json.JSONDecodeError:
        summary = {}
    return {"returncode": result.returncode, "computed": summary.get("computed"), "reused": summary.get("reused")}


def _round(kind: str, task: Path, measures, workdir: Path, total: int, rng: random.Random, cluster, log,
           psutil) -> dict:
    store, out = workdir / "store.sqlite", workdir / "predictions"
    _new_store(store)
    command = _score_command(task, measures, store, out, cluster.scheduler_address if kind == "dask-worker" else None)
    target = rng.randint(1, total * 3 // 4)  # kill once this many results are stored (some time after)
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    record = {"kind": kind, "kill_after": target, "killed": False, "orphans": 0, "runs_failed": 0}
    try:
        while proc.poll() is None and len(_query(store, "SELECT 1 FROM results")) < target:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        record["stored_at_kill"] = len(_query(store, "SELECT 1 FROM results"))
        if proc.poll() is None and record["stored_at_kill"] < total:  # else: missed, the run had ended
            record["killed"] = True
            if kind == "main":
                workers = _workers_of(psutil, proc.pid)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                record["orphans"] = _orphans(psutil, workers)
            elif kind == "worker":
                workers = sorted(_workers_of(psutil, proc.pid))
                if workers:
                    os.kill(rng.choice(workers), signal.SIGKILL)
                else:
                    record["killed"] = False
            else:
                pids = cluster.client.run(os.getpid)  # {address: pid} of the Dask worker processes
                victim = pids[rng.choice(sorted(pids))]
                below = _workers_of(psutil, victim)
                os.kill(victim, signal.SIGKILL)
                record["orphans"] = _orphans(psutil, below)
        if kind != "main":
            proc.wait(timeout=RUN_TIMEOUT_S)
            record["runs_failed"] += proc.returncode != 0
    finally:  # interrupted: leave no run behind (its workers follow it)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    resumed = _run(_score_command(task, measures, store, out, None), log)  # resume, or check nothing is left
    record["runs_failed"] += resumed["returncode"] != 0
    record["resume_computed"] = resumed["computed"]
    return record


def _check(store: Path, reference: dict) -> dict:
    stored = _stored(store)
    lost = sorted(f"model_{m}/{name}" for (m, name), row in reference.items() if stored.get((m, name)) != row)
    writes = _query(store, "SELECT model_id, measure, COUNT(*) FROM writes GROUP BY model_id, measure")
    twice = sorted(f"{m}/{name} x{n}" for m, name, n in writes if n > 1)
    return {"lost": lost, "written_twice": twice}


class _Cluster:
    """A local Dask cluster (loopback only) and a client to it, for the dask-worker rounds."""

    def __init__(self, stack: ExitStack):
        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # a killed worker and its rescheduled tasks are expected
        self._cluster = stack.enter_context(LocalCluster(
            n_workers=WORKERS, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None))
        self.client = stack.enter_context(Client(self._cluster))
        self.scheduler_address = self._cluster.scheduler_address


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.perf.faults", description=__doc__.split("\n")[0])
    parser.add_argument("--task", help="PGDL task folder (default: the digits-bn zoo, built on first use)")
    parser.add_argument("-m", "--measure", action="append", help=f"measures (default: {', '.join(MEASURES)})")
    parser.add_argument("--rounds", type=int, default=9, help="rounds, cycling through main, worker, dask-worker")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and victims")
    parser.add_argument("--json", help="write the rounds and totals to this file")
    args = parser.parse_args(argv)
    psutil = _psutil()
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.task:
        task = Path(args.task)
    else:
        from benchmark.data.zoo_builder import build_zoo

        task = build_zoo("digits-bn", progress=False)
    measures = args.measure or list(MEASURES)
    rng = random.Random(args.seed)
    rounds = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pgdl-faults-")))
        log = stack.enter_context(open(tmp / "stderr.log", "w"))
        (tmp / "reference").mkdir()
        _new_store(tmp / "reference" / "store.sqlite")
        start = time.monotonic()
        first = _run(_score_command(task, measures, tmp / "reference" / "store.sqlite", tmp / "reference", None), log)
        reference_s = time.monotonic() - start
        reference = _stored(tmp / "reference" / "store.sqlite")
        if first["returncode"] != 0 or any(status != "ok" for status, _ in reference.values()):
            log.flush()
            sys.exit(f"scripts.perf.faults: the uninterrupted run failed:\n{(tmp / 'stderr.log').read_text()[-3000:]}")
        print(f"reference: {len(reference)} results ({len(measures)} measures on {task}), {reference_s:.1f} s "
              "uninterrupted", flush=True)
        cluster = _Cluster(stack)
        for i in range(args.rounds):
            workdir = tmp / f"round_{i}"
            workdir.mkdir()
            start = time.monotonic()
            record = _round(KINDS[i % len(KINDS)], task, measures, workdir, len(reference), rng, cluster, log,
                            psutil)
            record.update(_check(workdir / "store.sqlite", reference), seconds=round(time.monotonic() - start, 1))
            rounds.append(record)
            print(f"round {i + 1}: kill {record['kind']:<11} "
                  + (f"at {record['stored_at_kill']:>3}/{len(reference)} stored" if record["killed"]
                     else "missed (the run had ended)")
                  + f"; resumed: {len(record['lost'])} lost, {len(record['written_twice'])} written twice, "
                  f"{record['orphans']} orphaned workers, {record['runs_failed']} failed runs, "
                  f"{record['resume_computed']} computed on resume ({record['seconds']} s)", flush=True)
    totals = {
        "rounds": len(rounds),
        "kills": {kind: sum(r["killed"] for r in rounds if r["kind"] == kind) for kind in KINDS},
        "results_per_round": len(reference),
        "results_lost": sum(len(r["lost"]) for r in rounds),
        "written_twice": sum(len(r["written_twice"]) for r in rounds),
        "orphaned_workers": sum(r["orphans"] for r in rounds),
        "failed_runs": sum(r["runs_failed"] for r in rounds),
        "reference_seconds": round(reference_s, 1),
    }
    print(f"{totals['rounds']} rounds, kills: " + ", ".join(f"{n} {k}" for k, n in totals["kills"].items())
          + f"; results lost: {totals['results_lost']}, computed twice: {totals['written_twice']}, "
          f"orphaned workers: {totals['orphaned_workers']}, failed runs: {totals['failed_runs']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"measures": measures, "task": str(task), "seed": args.seed,
                                               "totals": totals, "rounds": rounds}, indent=2))
    bad = totals["results_lost"] + totals["written_twice"] + totals["orphaned_workers"] + totals["failed_runs"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
