"""A worker process of ``benchmark.executor.LocalExecutor``: ``python -m benchmark.worker FD``.

It talks to its parent over the inherited pipe end FD: one ``("init", sys.path, threads)``, then
jobs, each answered by part messages and a final ``("done", key)``; ``None`` or EOF ends it.
Messages travel between our own processes only; nothing read from a task folder is unpickled.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection


def main(fd: int) -> None:
    conn = Connection(fd)
    try:
        _, path, threads = conn.recv()
    except EOFError:
        return
    sys.path[:] = path
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass
    from benchmark.executor import run_job_here

    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        run_job_here(job, conn.send)


if __name__ == "__main__":
    main(int(sys.argv[1]))
