"""The results store: one SQLite row per (task fingerprint, model, measure, parameters, version).

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
    status    TEXT NOT NULL,
    value     REAL,
    error     TEXT NOT NULL DEFAULT '',
    seconds   REAL NOT NULL DEFAULT 0,
    created   REAL NOT NULL,
    PRIMARY KEY (task_fp, model_id, measure, params, version)
);
"""


def default_store_path() -> Path:
    return bench_home() / "results.sqlite"


def params_key(params: dict) -> str:
    """Canonical JSON of a measure's parameters (defaults included): the store's key for them."""
    return json.dumps(params, sort_keys=True, default=repr, separators=(",", ":"))


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
    status: str
    value: float | None
    error: str
    seconds: float


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
            self.db.executescript(SCHEMA)
            # a truncated file opens fine and fails on some later query: find out now (reads every page)
            check = self.db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")

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
            status: str, value: float | None = None, error: str = "", seconds: float = 0.0) -> None:
        """Insert or replace one result; committed before returning."""
        with self._guard():
            self.db.execute(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (task_fp, task_name, model_id, measure, params, version, status, value, error, seconds,
                 time.time()),
            )

    def rows(self, task_fp: str, measure: str, params: str, version: str) -> dict[str, Row]:
        """{model_id: Row} of one measure on one task."""
        with self._guard():
            cursor = self.db.execute(
                "SELECT * FROM results WHERE task_fp=? AND measure=? AND params=? AND version=?",
                (task_fp, measure, params, version),
            )
            return {r[2]: Row(*r[:10]) for r in cursor.fetchall()}

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
