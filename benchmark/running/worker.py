"""A worker process of ``benchmark.running.executor.LocalExecutor``: ``python -m benchmark.running.worker FD PARENT_PID WATCH``.

It talks to its parent over the inherited pipe end FD: one ``("init", sys.path, threads)``, then
jobs, each answered by part messages and a final ``("done", key)``; ``None`` or EOF ends it.
Messages travel between our own processes only; nothing read from a task folder is unpickled.

A worker never outlives its parent, even while a measure hangs: with WATCH ``pdeathsig`` (Linux, the
parent's main thread started it) the kernel kills it when the parent dies; with ``poll`` a thread
checks every half second that its parent is still PARENT_PID. Its stdout goes to stderr, so that a
printing measure cannot corrupt the parent's ``--json`` output; SIGINT is the parent's to handle.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_S = 0.5


def die_with_parent(parent_pid: int, watch: str) -> None:
    """Exit as soon as the process ``parent_pid`` is no longer our parent (see the module docstring)."""
    if watch == "pdeathsig":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            watch = "poll"  # refused (a sandbox): fall back to watching
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if watch == "poll":
        def watchdog() -> None:
            while os.getppid() == parent_pid:
                time.sleep(POLL_S)
            os._exit(1)

        threading.Thread(target=watchdog, name="parent-watchdog", daemon=True).start()


def main(fd: int, parent_pid: int | None = None, watch: str = "poll") -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        die_with_parent(parent_pid, watch)
    from benchmark.running.streams import stdout_to_stderr_for_good

    stdout_to_stderr_for_good()
    conn = Connection(fd)
    try:
        _, path, threads = conn.recv()
        sys.path[:] = path
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover
            pass
        from benchmark.running.executor import run_job_here

        while (job := conn.recv()) is not None:
            run_job_here(job, conn.send)
    except (EOFError, OSError):  # the parent closed the pipe or died: nobody is left to report to
        return


if __name__ == "__main__":
    main(int(sys.argv[1]), *([int(sys.argv[2]), sys.argv[3]] if len(sys.argv) > 3 else []))
