"""Keep stdout for the program's own output (``--json``): whatever measures and plugins print goes to stderr.

Both levels are redirected: Python's ``sys.stdout`` and file descriptor 1, which C extensions and
child processes write to directly.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager, redirect_stdout


def _flush_stdout() -> None:
    for stream in (sys.stdout, sys.__stdout__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed or broken: nothing of ours to keep
            pass


@contextmanager
def stdout_to_stderr():
    """For the duration of the block, everything written to stdout goes to stderr."""
    _flush_stdout()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no fd 1 or 2 (a daemon): Python-level redirection is all there is to do
        saved = None
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        _flush_stdout()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def stdout_to_stderr_for_good() -> None:
    """In a worker process, whose stdout is the parent's: send all its stdout to stderr from now on."""
    _flush_stdout()
    try:
        os.dup2(2, 1)
    except OSError:
        pass
    sys.stdout = sys.stderr
