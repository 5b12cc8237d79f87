"""The content fingerprint of a zoo folder: sha256 over its files, in a fixed order.

Every regular file below the folder except ``zoo.json`` (the build's stamp, which may record the
fingerprint itself) is hashed, in the order of its relative POSIX path, as
``path NUL size NUL bytes``: renaming, adding, removing or changing any file changes it, and moving
or copying the folder (or installing it from a wheel) does not. Two machines hold the same models
exactly when their fingerprints agree.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

EXCLUDED = frozenset({"zoo.json"})
_CHUNK = 1 << 20


def fingerprinted_files(folder: str | os.PathLike) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of every file the fingerprint covers, in hashing order."""
    folder = Path(folder)
    files = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in names:
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            if relative not in EXCLUDED and path.is_file():
                files.append((relative, path))
    return sorted(files)


def content_fingerprint(folder: str | os.PathLike) -> str:
    """sha256 (64 hex digits) of the folder's files; see the module docstring for what is hashed."""
    h = hashlib.sha256()
    for relative, path in fingerprinted_files(folder):
        h.update(f"{relative}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def short_fingerprint(fingerprint: str) -> str:
    """How tables show a fingerprint: ``sha256:`` and its first 16 hex digits."""
    return f"sha256:{fingerprint[:16]}"
