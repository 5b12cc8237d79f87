"""A plain-loop transcription of the official PGDL CMI algorithm, step by step as SCORING.md states it.

It exists to check and to time ``benchmark.scores`` against: dictionaries and Python loops over all
N^2 ordered model pairs for every ordered pair of hyperparameters, like the competition's scorer.
Hyperparameter values are compared canonically (see ``task_loaders.canonical``); on well-typed data
that is what the official string comparison does too.
"""

from __future__ import annotations

import math

from task_loaders import canonical


def reference_cmi(predictions: dict, models: dict) -> tuple[float, dict]:
    """``models``: {"model_<id>": {"hparams": {name: value}, "gap": float}}; returns (score, per pair)."""
    ids = list(models)
    names = list(models[ids[0]]["hparams"])
    values: dict[str, list] = {}
    for name in names:
        seen = []
        for mid in ids:
            v = canonical(models[mid]["hparams"][name])
            if v not in seen:
                seen.append(v)
        values[name] = seen
    per_pair = {}
    best = math.inf
    for h1 in names:
        for h2 in names:
            if h1 == h2:
                continue
            # One 2x2 table per (h1_i, h1_j, h2_i, h2_j).
            tables = {}
            for a in values[h1]:
                for b in values[h1]:
                    for c in values[h2]:
                        for d in values[h2]:
                            tables[(a, b, c, d)] = [[0, 0], [0, 0]]
            for i in ids:
                for j in ids:
                    g = 0 if models[i]["gap"] > models[j]["gap"] else 1
                    m = 0 if predictions[i] > predictions[j] else 1
                    key = (
                        canonical(models[i]["hparams"][h1]),
                        canonical(models[j]["hparams"][h1]),
                        canonical(models[i]["hparams"][h2]),
                        canonical(models[j]["hparams"][h2]),
                    )
                    tables[key][g][m] += 1
            total_mi = 0.0
            total_h = 0.0
            for table in tables.values():
                n = table[0][0] + table[0][1] + table[1][0] + table[1][1]
                pg = [(table[0][0] + table[0][1]) / n, (table[1][0] + table[1][1]) / n]
                pm = [(table[0][0] + table[1][0]) / n, (table[0][1] + table[1][1]) / n]
                mi = 0.0
                for x in range(2):
                    for y in range(2):
                        joint = table[x][y] / n
                        if joint == 0:
                            continue
                        mi += joint * math.log2(joint / (pg[x] * pm[y]))
                h = 0.0
                for x in range(2):
                    h -= pg[x] * math.log2(pg[x] + 1e-12)
                total_mi += mi
                total_h += h
            score = (total_mi / len(tables)) / (total_h / len(tables))
            per_pair[(h1, h2)] = score
            best = min(best, score)
    return best, per_pair


def models_from_task(task) -> dict:
    """The ``models`` argument of ``reference_cmi`` for a loaded ``Task``."""
    return {f"model_{m}": {"hparams": task.hparams(m), "gap": task.gap(m)} for m in task.model_ids}
