"""The results store: one SQLite row per (task fingerprint, model, measure, parameters, version, repeat).

``version`` is the measure's code identity (``measures.code_identity.code_version``: its declared version
and a hash of its code, the code it uses, the loaders and the view, and the library versions), ``params``
its resolved parameters (``params_key``), ``repeat`` the repeat index (the view's seed).

Every result is committed the moment it arrives, so a run killed at any point keeps all it finished;
the next run skips those. Failures (errors, timeouts) are stored too, with their message, so a rerun
does not spend another budget on a measure that hangs unless asked to (``retry_failed``).
Only the parent process writes; WAL mode lets readers (scores, leaderboards) read meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from task_loaders import TaskFormatError, read_regular_file
from task_loaders.fingerprint import content_fingerprint
from task_loaders.zoo import bench_home

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    task_fp   TEXT NOT NULL,
    task_name TEXT NOT NULL,
    model_id  TEXT NOT NULL,
    measure   TEXT NOT NULL,
    params    TEXT NOT NULL,
    version   TEXT NOT NULL,
    repeat    INTEGER NOT NULL DEFAULT 0,
    status    TEXT NOT NULL,
    value     REAL,
    error     TEXT NOT NULL DEFAULT '',
    seconds   REAL NOT NULL DEFAULT 0,
    created   REAL NOT NULL,
    PRIMARY KEY (task_fp, model_id, measure, params, version, repeat)
);
"""
# Parameters that only split a built-in measure's forward passes into chunks: they change a value by float
# rounding at most, so they are left out of the key (a plugin's parameter of the same name may mean
# anything, and stays in it).
CHUNKING_PARAMS = ("batch_size",)
COLUMNS = ("task_fp", "task_name", "model_id", "measure", "params", "version", "repeat", "status", "value", "error",
           "seconds", "created")


def default_store_path() -> Path:
    return bench_home() / "results.sqlite"


def params_key(params: dict, builtin: bool = False) -> str:
    """Canonical JSON of a measure's parameters (defaults included): the store's key for them; for a
    built-in measure (``builtin``) without ``CHUNKING_PARAMS``."""
    kept = {k: v for k, v in params.items() if not (builtin and k in CHUNKING_PARAMS)}
    return json.dumps(kept, sort_keys=True, default=repr, separators=(",", ":"))


def task_fingerprint(task) -> str:
    """Identity of a task's contents.

    An in-house zoo (a folder with ``zoo.json`` and its own ``model_configs.json``, the pinned zoos
    included) is identified by its content fingerprint (sha256 of every file, ``task_loaders.fingerprint``):
    the same models give the same key on every machine and in every location. Other task folders, which
    may be large, by their JSON files' content and their weight files' and shards' size and mtime:
    rewriting a model or a shard changes it; moving or copying a folder does too (mtimes change), which
    can only cause a recomputation, never a stale result.
    """
    path = Path(task.path)
    if (path / "zoo.json").is_file() and Path(task.metrics_path).resolve() == (path / "model_configs.json").resolve():
        return content_fingerprint(path)
    h = hashlib.sha256()
    h.update(read_regular_file(task.metrics_path))
    files = []
    for model_id in task.model_ids:
        folder = task.model_dir(model_id)
        config = folder / "config.json"
        # bounded: a config.json that is a device or huge fails when its model loads, not here
        try:
            config_bytes = read_regular_file(config)
        except TaskFormatError:
            config_bytes = b"unreadable"
        h.update(model_id.encode() + b"\0" + config_bytes)
        files += [folder / "weights.hdf5", folder / "weights_init.hdf5"]
    dataset = Path(task.path) / "dataset_1"
    if dataset.is_dir():
        files += sorted(dataset.rglob("*.tfrecord"))
    for path in files:
        try:
            st = path.stat()
            h.update(f"{path.relative_to(task.path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            h.update(f"{path.name}:missing\n".encode())
    return h.hexdigest()[:24]


@dataclass
class Row:
    task_fp: str
    task_name: str
    model_id: str
    measure: str
    params: str
    version: str
    repeat: int
    status: str
    value: float | None
    error: str
    seconds: float
    created: float = 0.0


class StoreError(RuntimeError):
    """The results store cannot be opened, read or written; the message names it and what to do."""


def _advice(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return (f"not a readable results store ({text}); move it aside (its results are lost) "
                "or pass --store NEW.sqlite")
    reason = getattr(exc, "strerror", None) or text
    return (f"cannot write the results store ({reason}); make the file and its folder writable, "
            "or pass --store (or set PGDL_BENCH_HOME) to a writable place")


class ResultStore:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_store_path()
        self.db = None
        with self._guard():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)  # autocommit
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
            self.db.executescript(SCHEMA)
            # a truncated file opens fine and fails on some later query: find out now (reads every page)
            check = self.db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")

    def _migrate(self) -> None:
        """A store written before the repeat had its own column kept repeat k >= 1 as a ``#r<k>`` suffix of
        the params column: move its rows into the current table, the repeat split off."""
        columns = [r[1] for r in self.db.execute("PRAGMA table_info(results)").fetchall()]
        if not columns or "repeat" in columns:
            return
        self.db.execute("BEGIN")
        self.db.execute("ALTER TABLE results RENAME TO results_old")
        self.db.execute(SCHEMA.replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE"))
        for row in self.db.execute("SELECT * FROM results_old").fetchall():
            params, sep, k = row[4].rpartition("#r")
            repeat = int(k) if sep and k.isdigit() else 0
            params = params if sep and k.isdigit() else row[4]
            self.db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                            (*row[:4], params, row[5], repeat, *row[6:]))
        self.db.execute("DROP TABLE results_old")
        self.db.execute("COMMIT")

    @contextmanager
    def _guard(self):
        """sqlite3 and file-system errors as one ``StoreError`` naming the store and what to do."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            if self.db is not None and self.db.in_transaction:
                self.db.rollback()
            raise StoreError(f"{self.path}: {_advice(exc)}") from None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def put(self, task_fp: str, task_name: str, model_id: str, measure: str, params: str, version: str,
            status: str, value: float | None = None, error: str = "", seconds: float = 0.0, repeat: int = 0) -> None:
        """Insert or replace one result; committed before returning."""
        with self._guard():
            self.db.execute(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (task_fp, task_name, model_id, measure, params, version, int(repeat), status, value, error, seconds,
                 time.time()),
            )

    def rows(self, task_fp: str, measure: str, params: str, version: str, repeat: int = 0) -> dict[str, Row]:
        """{model_id: Row} of one measure's repeat on one task."""
        with self._guard():
            cursor = self.db.execute(
                "SELECT * FROM results WHERE task_fp=? AND measure=? AND params=? AND version=? AND repeat=?",
                (task_fp, measure, params, version, int(repeat)),
            )
            return {r[2]: Row(*r) for r in cursor.fetchall()}

    def summary(self) -> list[dict]:
        """Per (task, measure, params, version): the rows' count by status, repeats, oldest and newest time."""
        with self._guard():
            cursor = self.db.execute(
                "SELECT task_fp, task_name, measure, params, version, COUNT(*), SUM(status = 'ok'), "
                "COUNT(DISTINCT repeat), MIN(created), MAX(created) FROM results "
                "GROUP BY task_fp, task_name, measure, params, version ORDER BY task_name, measure, MAX(created)")
            keys = ("task_fp", "task_name", "measure", "params", "version", "rows", "ok", "repeats", "oldest", "newest")
            return [dict(zip(keys, r)) for r in cursor.fetchall()]

    def delete_versions(self, measure: str, versions: Iterable[str]) -> int:
        """Forget every result of ``measure`` stored under these versions (``pgdl-bench store prune``)."""
        count = 0
        with self._guard():
            for version in versions:
                count += self.db.execute("DELETE FROM results WHERE measure=? AND version=?",
                                         (measure, version)).rowcount
        return count

    def versions(self, task_fp: str, measure: str, params: str) -> set[str]:
        """The versions (code identities) under which a measure has results on a task with these parameters."""
        with self._guard():
            cursor = self.db.execute(
                "SELECT DISTINCT version FROM results WHERE task_fp=? AND measure=? AND params=?",
                (task_fp, measure, params),
            )
            return {r[0] for r in cursor.fetchall()}

    def delete(self, task_fp: str, measures: Iterable[str]) -> int:
        """Forget every result of these measures on a task (``--fresh``)."""
        count = 0
        with self._guard():
            for measure in measures:
                count += self.db.execute(
                    "DELETE FROM results WHERE task_fp=? AND measure=?", (task_fp, measure)).rowcount
        return count

    def delete_failed(self, task_fp: str, measures: Iterable[str]) -> int:
        count = 0
        with self._guard():
            for measure in measures:
                count += self.db.execute(
                    "DELETE FROM results WHERE task_fp=? AND measure=? AND status != 'ok'", (task_fp, measure)
                ).rowcount
        return count
