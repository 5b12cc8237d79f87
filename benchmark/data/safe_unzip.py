"""Unpack an untrusted zip atomically, checking every member's CRC and refusing paths that escape.

Members are written into a temporary sibling of the destination (``.<name>.unpacking``), each read
through ``zipfile`` (which checks its CRC-32 as it reads); only when every member is in place is the
folder renamed to the destination. A failure removes the temporary folder: nothing half-unpacked is
ever left where a complete folder belongs. Refused before anything is written: absolute member
paths, drive letters, ``..`` components, backslashes, symbolic links and duplicate names. macOS
metadata (``__MACOSX/``, ``.DS_Store``) is skipped.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

CHUNK = 1 << 20


class UnzipError(Exception):
    """A zip that is corrupt or unsafe: one line naming the zip and the member."""


def _check_member(zip_path: Path, info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, None for a folder entry or macOS metadata; UnzipError for anything unsafe."""
    name = info.filename
    path = PurePosixPath(name)
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
        raise UnzipError(f"{zip_path}: refusing member {name!r}: its path leaves the destination folder")
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        raise UnzipError(f"{zip_path}: refusing member {name!r}: it is a symbolic link")
    parts = [p for p in path.parts if p not in ("", ".")]
    if info.is_dir() or (parts and parts[0] == "__MACOSX") or path.name == ".DS_Store":
        return None  # folders are made as needed; macOS metadata is skipped, as the official scorer skips it
    if not parts:
        raise UnzipError(f"{zip_path}: refusing member {name!r}: empty path")
    return PurePosixPath(*parts)


def unpacked_size(zip_path: str | os.PathLike) -> int:
    """Bytes the members take once unpacked (from the zip's central directory)."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            return sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnzipError(f"{zip_path}: not a readable zip file ({exc})") from None


def safe_unzip(zip_path: str | os.PathLike, dest: str | os.PathLike, progress: bool = True) -> Path:
    """Unpack ``zip_path`` so that ``dest`` holds its members, atomically; returns ``dest``.

    A zip whose members all sit in one top-level folder named like ``dest`` (``public_data.zip``
    holding ``public_data/...``) is not nested twice: ``dest`` gets that folder's contents.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    staging = dest.with_name(f".{dest.name}.unpacking")
    if staging.exists():
        shutil.rmtree(staging)  # a previous run's leftovers
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = [(info, _check_member(zip_path, info)) for info in zf.infolist()]
            seen: set[str] = set()
            for info, rel in members:
                if rel is not None:
                    key = rel.as_posix().casefold()
                    if key in seen:
                        raise UnzipError(f"{zip_path}: refusing member {info.filename!r}: its name appears twice")
                    seen.add(key)
            staging.mkdir(parents=True)
            root = staging.resolve()
            total = sum(info.file_size for info, rel in members if rel is not None)
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"unpacking {zip_path.name}",
                      disable=not progress, leave=False) as bar:
                for info, rel in members:
                    if rel is None:
                        continue
                    out = staging.joinpath(*rel.parts)
                    if not out.resolve().is_relative_to(root):  # belt and braces: a component resolved outside
                        raise UnzipError(f"{zip_path}: refusing member {info.filename!r}: outside the destination")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        with zf.open(info) as src, open(out, "wb") as dst:
                            while chunk := src.read(CHUNK):
                                dst.write(chunk)
                                bar.update(len(chunk))
                    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
                        raise UnzipError(f"{zip_path}: member {info.filename!r} is corrupt ({exc})") from None
        top = [p for p in staging.iterdir()]
        source = top[0] if len(top) == 1 and top[0].is_dir() and top[0].name == dest.name else staging
        source.replace(dest)
    except zipfile.BadZipFile as exc:
        raise UnzipError(f"{zip_path}: not a readable zip file ({exc})") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return dest
