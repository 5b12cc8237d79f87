"""One measure's scores on one task over its repeats: means, 95% intervals, and the per-repeat values.

``summarize`` turns ``evaluate()``'s dicts (one per repeat, repeat 0 first) into one dict with the same
keys, each number the mean over repeats (so ``"cmi"`` stays a plain number, the point estimate), plus:

* ``"repeats"``: how many repeats were scored; ``"stochastic"``: the registry's flag;
* ``"intervals"``: ``{"cmi": [low, high], "kendall_tau": ..., "psi": ..., "robust_sign_error": ...,
  "level": 0.95, "method": ...}``: Student-t over repeats; ``[v, v]`` for a deterministic measure;
  null for a stochastic one scored once, or where the score is undefined;
* ``"repeat_scores"``: ``{"cmi": [...], "kendall_tau": [...], "psi": [...], "robust_sign_error": [...]}``,
  one value per repeat (only with more than one repeat).
"""

from __future__ import annotations

import math

import numpy as np

from .scores.intervals import INTERVAL_METHOD, LEVEL, t_interval
from .scores.robust import robust_from_repeats

INTERVAL_KEYS = ("cmi", "kendall_tau", "psi", "robust_sign_error")


def headline(scores: dict) -> dict[str, float]:
    """The four numbers that get intervals, from one ``evaluate()`` dict (NaN where undefined)."""
    robust = scores["robust_sign_error"]["robust"]
    return {"cmi": scores["cmi"], "kendall_tau": scores["kendall_tau"],
            "psi": scores["granulated_kendall"]["psi"],
            "robust_sign_error": float("nan") if robust is None else robust}


def _mean(values) -> float:
    values = [float(v) for v in values]
    return float("nan") if any(math.isnan(v) for v in values) else float(np.mean(values))


def interval(values, exact: bool) -> list[float] | None:
    """[low, high] of ``t_interval``, or None when there is none or a value is undefined."""
    if any(math.isnan(float(v)) for v in values):
        return None
    _, low, high = t_interval(values, exact=exact)
    return None if low is None else [low, high]


def summarize(per_repeat: list[dict], stochastic: bool = True) -> dict:
    first = per_repeat[0]
    out = dict(first)
    out["cmi"] = _mean(s["cmi"] for s in per_repeat)
    out["conditions"] = {c: _mean(s["conditions"][c] for s in per_repeat) for c in first["conditions"]}
    out["kendall_tau"] = _mean(s["kendall_tau"] for s in per_repeat)
    out["granulated_kendall"] = {k: _mean(s["granulated_kendall"][k] for s in per_repeat)
                                 for k in first["granulated_kendall"]}
    out["robust_sign_error"] = robust_from_repeats([s["robust_sign_error"] for s in per_repeat])
    values = {k: [headline(s)[k] for s in per_repeat] for k in INTERVAL_KEYS}
    out["repeats"] = len(per_repeat)
    out["stochastic"] = bool(stochastic)
    out["intervals"] = {k: interval(values[k], exact=not stochastic) for k in INTERVAL_KEYS}
    out["intervals"].update({"level": LEVEL, "method": INTERVAL_METHOD})
    if len(per_repeat) > 1:
        out["repeat_scores"] = values
    return out
