"""Measures that misbehave at the process level, for tests/test_faults_workers.py (imported by workers too).

Each call is appended to $PGDL_TEST_CALL_LOG as "<measure> <model id> <pid>", before the measure
misbehaves, so tests know which processes are inside a measure. The bad model is $PGDL_TEST_BAD_MODEL.
"""

import os
import sys
import time

from measures import measure

if os.environ.get("PGDL_TEST_PRINT_ON_IMPORT"):
    print("faulty_processes: loaded")  # a chatty plugin


def _log(name, view):
    path = os.environ.get("PGDL_TEST_CALL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{name} {view.model_id} {os.getpid()}\n")


@measure("test_exits", source="tests")
def exits(view):
    """Ends its process with os._exit(1) on the bad model, as a crashing C extension would."""
    _log("test_exits", view)
    if view.model_id == os.environ.get("PGDL_TEST_BAD_MODEL", "5"):
        os._exit(1)
    return 5.0 + float(view.model_id)


@measure("test_prints", source="tests")
def prints(view):
    """Prints to stdout, from Python and straight to file descriptor 1, then returns the model id."""
    print(f"test_prints: python says model {view.model_id}")
    sys.stdout.flush()
    os.write(1, f"test_prints: fd 1 says model {view.model_id}\n".encode())
    return float(view.model_id)


@measure("test_sleeps", source="tests")
def sleeps(view):
    """Sleeps $PGDL_TEST_SLEEP_S seconds (default: an hour), then returns the model id."""
    _log("test_sleeps", view)
    time.sleep(float(os.environ.get("PGDL_TEST_SLEEP_S", "3600")))
    return float(view.model_id)
