"""Reading the JSON files of a task (and of predictions) without trusting them.

A task folder comes from elsewhere: a ``config.json`` may be a symlink to ``/dev/zero``, a FIFO, a
file of gigabytes, an object nested a million deep or a number of ten thousand digits. Each is
refused with one ``TaskFormatError`` naming the file, before it can exhaust memory or the stack.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import TaskFormatError

MAX_JSON_BYTES = 64 * 1024 * 1024  # far above any real task's model_configs.json (a few hundred KB)


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` refusing a key repeated in one object (``json.loads`` keeps the last)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a file"


def read_regular_file(path: str | os.PathLike, limit: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file (symlinks followed) of at most ``limit`` bytes."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then sees what was opened.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise TaskFormatError(f"{path}: file not found") from None
    except OSError as exc:
        raise TaskFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TaskFormatError(f"{path}: cannot read ({_kind(info.st_mode)}, not a regular file); "
                                  "put the file itself there")
        if info.st_size > limit:
            raise TaskFormatError(f"{path}: {info.st_size} bytes, more than the {limit} allowed for this file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise TaskFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew since fstat
        raise TaskFormatError(f"{path}: more than the {limit} bytes allowed for this file")
    return data


def read_json(path: str | os.PathLike, limit: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file of a task: bounded read (``read_regular_file``), keys unique in every object,
    ``NaN``/``Infinity`` read as floats; any defect is one ``TaskFormatError`` naming the file."""
    data = read_regular_file(path, limit)
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=unique_keys)
    except _DuplicateKey as exc:
        raise TaskFormatError(f"{path}: key {exc.key!r} appears twice in one object") from None
    except RecursionError:
        raise TaskFormatError(f"{path}: not valid JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and integers of over 4300 digits
        raise TaskFormatError(f"{path}: not valid JSON ({exc})") from None
