"""One task's verdicts: every measure's intervals over the joint test-set resamples and its repeats, and the
corrected comparison of every measure with the task's best, from the same resamples for every measure.

``task_verdicts`` is what ``collect`` (and so ``score``, ``leaderboard`` and ``benchmark.score``) adds to each
scored cell: ``"intervals"`` (``intervals.score_draws``: centred bootstrap over the gaps' joint test resamples
and drawn repeats; Student t over the repeats where the task has no per-sample correctness),
``"comparison_with_best"`` (``comparisons.compare_with_best``: paired centred bootstrap, Holm over the
comparisons with the best, membership of the 95% confidence set of the best) and ``"resample_scores"``
(the B bootstrap replicates of each score, to recompute all of it).
"""

from __future__ import annotations

import numpy as np

from .comparisons import TEST_METHOD, Estimate, compare_with_best, estimate, holm, paired_difference
from .intervals import INTERVAL_METHOD, LEVEL, VERDICT_INTERVAL_METHOD, score_draws, t_interval
from .resampling import RESAMPLES


def task_verdicts(arrays, preds: dict[str, np.ndarray], signs: dict[str, int], gap_resamples=None,
                  identity: tuple[str, ...] = (), resamples: int = RESAMPLES,
                  stochastic: dict[str, bool] | None = None) -> dict[str, dict]:
    """Per measure: ``{"intervals": {...}, "comparison_with_best": {...}, "resample_scores": {...}}``.

    ``preds``: measure -> (K, N) predictions, one row per repeat; ``gap_resamples``: the task's (B, N) joint
    gap resamples (``resampling.task_gap_resamples(...).gaps``) or None; ``identity`` seeds the repeat draws,
    the same for every measure of the task."""
    draws = {m: score_draws(p, arrays, gap_resamples, identity, sign=signs.get(m, 1), resamples=resamples)
             for m, p in preds.items()}
    comparisons = compare_with_best({m: estimate(d, "cmi") for m, d in draws.items()})
    method = VERDICT_INTERVAL_METHOD if gap_resamples is not None else INTERVAL_METHOD
    out = {}
    for m, d in draws.items():
        intervals = {s: None if iv is None else list(iv) for s, iv in d.intervals.items()}
        if gap_resamples is None:  # only the repeats vary: Student t over them (exact for a deterministic one)
            exact = not (stochastic or {}).get(m, True)
            intervals = {s: _t(v, exact) for s, v in d.per_repeat.items()}
        out[m] = {"intervals": {**intervals, "level": LEVEL, "method": method},
                  "resample_scores": {s: v.tolist() for s, v in d.draws.items()}}
        if m in comparisons:
            out[m]["comparison_with_best"] = {"measure": m, **comparisons[m].as_dict(), "test": TEST_METHOD}
    return out


def _t(values: np.ndarray, exact: bool) -> list[float] | None:
    if np.isnan(values).any():
        return None
    _, low, high = t_interval(values, exact=exact)
    return None if low is None else [low, high]


def compare_pairs(task_entries: dict[str, dict], pairs: list[tuple[str, str]], alpha: float = 0.05) -> list[dict]:
    """``--compare A B``: each requested pair on each task, paired on the stored bootstrap replicates
    (``resample_scores``: the same resamples and repeat draws for both), CMI(A) - CMI(B) with its centred
    interval and two-sided p, Holm-corrected over all the pairs and tasks asked for."""
    rows = []
    for task, entries in task_entries.items():
        for a, b in pairs:
            if a not in entries or b not in entries:
                continue
            ea, eb = (Estimate(entries[m]["cmi"], np.asarray(entries[m]["resample_scores"]["cmi"])) for m in (a, b))
            rows.append({"task": task, "a": a, "b": b, **paired_difference(ea, eb, alpha)})
    adjusted = holm({i: r["p_value"] for i, r in enumerate(rows)})
    for i, r in enumerate(rows):
        r["interval"] = list(r["interval"])
        r["p_holm"] = adjusted[i]
        r["separated"] = bool(adjusted[i] < alpha)
    return rows
