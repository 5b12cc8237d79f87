"""The cache that makes a rerun over a warm store cheap: scores, comparisons and plots of the previous run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .. import repeats
from ..scores import cmi, comparisons, intervals, kendall, resampling, robust, scoring

CACHE_FILE = ".leaderboard-cache.json"


def _code_key() -> str:
    """What scores and plots depend on besides their data: this package's code, the scoring code, library
    versions."""
    # Imported here, not at the top: only a leaderboard needs them, and every command imports this package.
    import matplotlib
    import scipy

    h = hashlib.sha256()
    files = [*sorted(Path(__file__).parent.glob("*.py")),
             *(Path(m.__file__) for m in (scoring, cmi, kendall, robust, intervals, comparisons, resampling, repeats))]
    for module_file in files:
        h.update(module_file.read_bytes())
    h.update(f"{np.__version__} {scipy.__version__} {matplotlib.__version__}".encode())
    return h.hexdigest()


class ScoreCache:
    """Scores and plots of the previous run into the same folder (``DIR/.leaderboard-cache.json``), keyed by
    hashes of everything they depend on: the task's fingerprint in the store (its metrics file, weights),
    the predictions, the scoring and plotting code and library versions. A rerun over a warm store then
    neither rescores nor redraws what did not change; anything that changed is computed afresh."""

    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / CACHE_FILE
        self.code = _code_key()
        self.scores: dict[str, dict] = {}
        self.plots: dict[str, str] = {}
        self.comparisons: dict[str, dict] = {}
        self.used_scores: dict[str, dict] = {}
        self.used_plots: dict[str, str] = {}
        self.used_comparisons: dict[str, dict] = {}
        try:
            data = json.loads(self.path.read_text())
            if data.get("code") == self.code:
                self.scores, self.plots = dict(data["scores"]), dict(data["plots"])
                self.comparisons = dict(data.get("comparisons", {}))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no cache, or an unreadable one: compute everything

    def key(self, *parts) -> str:
        h = hashlib.sha256(self.code.encode())
        for part in parts:
            h.update(b"\0" + (part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode()))
        return h.hexdigest()

    def score_key(self, fingerprint: str, values: dict[str, float], sign: int = 1) -> str:
        return self.key(fingerprint, values, sign)

    def plot_key(self, fingerprint: str, *data) -> str:
        return self.key(fingerprint, *data)

    def save(self) -> None:
        data = {"code": self.code, "scores": self.used_scores, "plots": self.used_plots,
                "comparisons": self.used_comparisons}
        try:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)
        except OSError:
            pass  # a cache that cannot be written costs only time
