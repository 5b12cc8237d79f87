"""HTTP download of one large file that survives interruptions: HTTP Range resume, size checks, progress.

The bytes go to ``<target>.part``; only when the part file holds exactly the size the server
announced (``Content-Range`` total, else ``Content-Length``) is it renamed to ``<target>``, so a
file at ``target`` is always a complete download. A rerun after an interruption asks for the rest
(``Range: bytes=<have>-``); a server that ignores the range (200 instead of 206) is downloaded again
from the start. Standard library HTTP (urllib) and a tqdm bar.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from tqdm import tqdm

CHUNK = 1 << 20


class DownloadError(Exception):
    """A download that failed: the message is one line naming the URL and what to do."""


def _total_size(response, start: int, url: str) -> int:
    """The full size of the file from a 206's Content-Range or a 200's Content-Length."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers.get("Content-Range", "").strip())
        if not match or int(match.group(1)) != start:
            raise DownloadError(f"{url}: the server answered a resume from byte {start} with Content-Range "
                                f"{response.headers.get('Content-Range')!r}; delete the .part file and rerun")
        total = int(match.group(3))
        if length is not None and int(length) != total - start:
            raise DownloadError(f"{url}: Content-Length {length} does not match Content-Range {match.group(0)}")
        return total
    if length is None:
        raise DownloadError(f"{url}: the server does not say how large the file is (no Content-Length)")
    return int(length)


def _unsatisfiable_total(error: urllib.error.HTTPError) -> int | None:
    """The file size a 416 (range not satisfiable) states in ``Content-Range: bytes */<size>``."""
    match = re.fullmatch(r"bytes \*/(\d+)", (error.headers.get("Content-Range") or "").strip())
    return int(match.group(1)) if match else None


def download(url: str, target: str | os.PathLike, *, check_space: Callable[[int, int], None] | None = None,
             progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` (resuming ``target.part``); returns ``target``.

    ``check_space(remaining_bytes, total_bytes)`` is called once the size is known, before any byte is
    written; it raises to refuse. Raises ``DownloadError`` (one line) on HTTP errors, a connection that
    breaks (the bytes received so far are kept for the next run) or a size that does not match.
    """
    target = Path(target)
    if target.is_file():
        return target
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        total = _unsatisfiable_total(exc) if exc.code == 416 and have else None
        if total != have:
            raise DownloadError(f"{url}: HTTP error {exc.code} {exc.reason}") from None
        response = None  # the part file already holds the whole file (a run stopped before renaming it)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    if response is not None:
        with response:
            if response.status not in (200, 206):
                raise DownloadError(f"{url}: unexpected HTTP status {response.status}")
            if response.status == 200 and have:
                have = 0  # the server ignored the range: start again
            total = _total_size(response, have, url)
            if have > total:
                raise DownloadError(f"{url}: {part} holds {have} bytes, more than the {total} the server has; "
                                    "delete it and rerun")
            if check_space:
                check_space(total - have, total)
            _stream(response, part, have, total, url, progress)
    size = part.stat().st_size if part.is_file() else 0
    if size != total:
        raise DownloadError(f"{url}: received {size} of {total} bytes; rerun to resume")
    part.replace(target)
    return target


def _stream(response, part: Path, have: int, total: int, url: str, progress: bool) -> None:
    mode = "ab" if have else "wb"
    received = have
    with open(part, mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                                       desc=part.name.removesuffix(".part"), disable=not progress,
                                       leave=False) as bar:
        try:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except (http.client.IncompleteRead, OSError) as exc:
            out.flush()
            raise DownloadError(f"{url}: connection broken after {received} of {total} bytes "
                                f"({type(exc).__name__}); rerun to resume") from None
    if received < total:
        raise DownloadError(f"{url}: connection closed after {received} of {total} bytes; rerun to resume")
    if received > total:
        raise DownloadError(f"{url}: received {received} bytes, the server announced {total}")


def free_bytes(path: str | os.PathLike) -> int:
    """Free space on the file system holding ``path`` (its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free
