"""Scores over the replicates of a replicate set: per replicate, and mean and spread over replicates.

A replicate set (``task_loaders.replicates``) is one recipe trained with K training seeds; each member is
scored as a task of its own, and here each measure's CMI, tau and psi are summarized over the members:
the mean and the sample standard deviation (ddof 1) over the K replicates, beside the per-replicate
values, and the replicate gap ceiling (``noise_ceiling.replicate_ceiling``).
"""

from __future__ import annotations

import math

import numpy as np

SUMMARIZED = {"cmi": lambda s: s["cmi"], "kendall_tau": lambda s: s["kendall_tau"],
              "psi": lambda s: s["granulated_kendall"]["psi"]}


def mean_and_spread(values: list[float]) -> dict:
    """``{"mean", "sd", "per_replicate"}`` over the finite values (sd: sample standard deviation, ddof 1)."""
    finite = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    return {"mean": float(finite.mean()) if len(finite) else None,
            "sd": float(finite.std(ddof=1)) if len(finite) > 1 else None,
            "per_replicate": [None if v is None or math.isnan(v) else float(v) for v in values]}


def summarize_replicates(scores: dict[str, dict[str, dict]], members: list[str]) -> dict[str, dict]:
    """Per measure scored on every member: ``{"cmi": mean_and_spread, "kendall_tau": ..., "psi": ...}``.

    ``scores``: task name -> measure -> ``scoring.evaluate``'s dict; ``members``: the set's task names.
    """
    measures = set.intersection(*(set(scores.get(m, {})) for m in members)) if members else set()
    return {name: {key: mean_and_spread([get(scores[m][name]) for m in members]) for key, get in SUMMARIZED.items()}
            for name in sorted(measures)}
