"""pgdl-bench: orchestration, scores, leaderboard and the command line.

``benchmark.score(tasks, measures, repeats=...)`` runs the same pipeline as ``pgdl-bench score`` from a
script or a notebook and returns what ``score --json`` prints (``benchmark.pipeline.score``).
"""


def __getattr__(name):
    # imported on first use: worker processes import this package and need none of it
    if name == "score":
        from .pipeline import score

        return score
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
