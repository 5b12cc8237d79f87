"""The embedded default zoos, pinned: built once and shipped inside the package, read in place.

``zoos_pinned/<name>/`` holds a complete in-house zoo (data splits, configs, weights, initial weights,
per-sample correctness, ``model_configs.json``) exactly as ``pgdl-bench zoo build <name>`` wrote it on
the machine that pinned it. Training's float results differ between CPUs, so a local build need not
match; the pinned copy is what every machine scores. ``PINNED_FINGERPRINTS`` records each zoo's
content fingerprint (``task_loaders.fingerprint``): a test checks the shipped files against it (the
"second machine gets the same models" check), and ``zoo build`` says whether a local build matches.

Nothing here writes: the folders may sit in a read-only site-packages.
"""

from __future__ import annotations

from pathlib import Path

PINNED_ROOT = Path(__file__).resolve().parent / "zoos_pinned"

# Content fingerprints of the shipped zoos (sha256, see task_loaders.fingerprint).
PINNED_FINGERPRINTS: dict[str, str] = {
    "digits-bn": "7a20cdaa97f2e8b9c98f120062240d8b25f7d2459f53b5003b48ebad236f4833",
    "digits-nobn": "c427f0a6cf6675f14a4fbd389915b18f6d3d9a5a66758a9cf691a545633606b5",
}


def pinned_zoo(name: str) -> Path | None:
    """The shipped folder of a pinned zoo, or None when ``name`` is not pinned (or not shipped)."""
    if name not in PINNED_FINGERPRINTS:
        return None
    path = PINNED_ROOT / name
    return path if (path / "model_configs.json").is_file() else None


def pinned_name(path) -> str | None:
    """The pinned zoo a folder is (by location, not content), or None."""
    try:
        resolved = Path(path).resolve()
    except OSError:
        return None
    for name in PINNED_FINGERPRINTS:
        if resolved == (PINNED_ROOT / name).resolve():
            return name
    return None
