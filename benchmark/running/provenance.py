"""Provenance of every result: what code, libraries, machine, measures and models produced it.

``provenance(...)`` is the ``"provenance"`` object of every JSON output (``score --json``,
``evaluate --json``, ``leaderboard.json``): the pgdl-bench version and, when run from a git checkout,
its commit; Python, torch and numpy versions; the device; the date (UTC); per measure its version,
code hash and parameters; per task its fingerprint (and, for a pinned zoo, whether it matches the
fingerprint recorded in the package).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import measures as measure_registry
from measures.code_identity import code_hash
from task_loaders.pinned import PINNED_FINGERPRINTS, pinned_name

REPO = Path(__file__).resolve().parents[2]


def git_commit(root: Path = REPO) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout this code runs from, or None outside a checkout."""
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def package_version() -> str:
    try:
        return importlib.metadata.version("pgdl-bench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def device_description(device: str = "cpu") -> str:
    """The device measures ran on, as torch names it, with its model (float results depend on it): the CPU's
    from /proc/cpuinfo, a GPU's from torch."""
    if device.startswith("cuda") and torch.cuda.is_available():
        index = int(device.split(":")[1]) if ":" in device else 0
        return f"{device} ({torch.cuda.get_device_name(index)})"
    if device != "cpu":
        return device
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu ({model})"


def environment(device: str = "cpu") -> dict:
    return {
        "pgdl_bench": {"version": package_version(), "git": git_commit()},
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": f"{sys.platform} {platform.machine()}",
        "device": device_description(device),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def measure_provenance(params: dict[str, dict]) -> dict:
    """Per measure: version, code hash and the parameters used (``params``: name -> parameters)."""
    out = {}
    for name, values in params.items():
        entry = measure_registry.get(name)
        out[name] = {"version": entry.version, "code_hash": code_hash(entry), "origin": entry.origin,
                     "params": {k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)
                                for k, v in values.items()}}
    return out


def task_provenance(task, fingerprint: str) -> dict:
    """A task's identity: its fingerprint, and for a pinned zoo whether it is the recorded one."""
    out = {"fingerprint": fingerprint, "path": str(task.path), "models": len(task.model_ids)}
    pinned = pinned_name(task.path)
    if pinned is not None:
        out["pinned"] = pinned
        out["matches_pinned"] = fingerprint == PINNED_FINGERPRINTS[pinned]
    else:
        same = [name for name, expected in PINNED_FINGERPRINTS.items() if expected == fingerprint]
        if same:
            out["same_content_as_pinned"] = same[0]  # e.g. a local build that reproduced a pinned zoo
    return out


def provenance(tasks: dict[str, dict] | None = None, params: dict[str, dict] | None = None,
               device: str = "cpu") -> dict:
    """The ``"provenance"`` object: ``environment(device)``, ``measures`` and ``tasks`` (``task_provenance``);
    ``device`` is where the measures ran (``--device``)."""
    return {**environment(device), "measures": measure_provenance(params or {}), "tasks": tasks or {}}
