"""Measures that misbehave on purpose, for the reliability tests (imported by worker processes too).

Every call is appended to $PGDL_TEST_CALL_LOG ("<measure> <model id>" per line), so tests can check
that nothing finished is ever recomputed. The misbehaving model is $PGDL_TEST_BAD_MODEL (default 5).
"""

import math
import os
import signal
import time
from pathlib import Path

from measures import measure


def _log(name, view):
    path = os.environ.get("PGDL_TEST_CALL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{name} {view.model_id}\n")


def _bad(view) -> bool:
    return view.model_id == os.environ.get("PGDL_TEST_BAD_MODEL", "5")


@measure("test_fine", source="tests", stochastic=False)
def fine(view):
    """Model id plus the number of training samples."""
    _log("test_fine", view)
    return float(view.model_id) + view.num_train


@measure("test_raises", source="tests", stochastic=False)
def raises(view):
    """Raises on the bad model."""
    _log("test_raises", view)
    if _bad(view):
        raise ValueError("deliberate failure")
    return 1.0 + float(view.model_id)


@measure("test_hangs", source="tests", stochastic=False)
def hangs(view):
    """Never returns on the bad model."""
    _log("test_hangs", view)
    if _bad(view):
        time.sleep(3600)
    return 2.0 + float(view.model_id)


@measure("test_nan", source="tests", stochastic=False)
def nan(view):
    """NaN on the bad model."""
    _log("test_nan", view)
    return math.nan if _bad(view) else 3.0 + float(view.model_id)


@measure("test_kills_worker", source="tests", stochastic=False)
def kills_worker(view):
    """The first time it meets the bad model (every time with $PGDL_TEST_ALWAYS_KILL), its worker
    process is killed (SIGKILL) mid-measure."""
    _log("test_kills_worker", view)
    marker = Path(os.environ["PGDL_TEST_MARKER_DIR"]) / "killed_once"
    if _bad(view) and (os.environ.get("PGDL_TEST_ALWAYS_KILL") or not marker.exists()):
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return 4.0 + float(view.model_id)


@measure("test_slow", source="tests", stochastic=False)
def slow(view):
    """Sleeps $PGDL_TEST_SLOW_S seconds, then returns the model id."""
    time.sleep(float(os.environ.get("PGDL_TEST_SLOW_S", "0.5")))
    _log("test_slow", view)
    return float(view.model_id)
