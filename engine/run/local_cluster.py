"""A Dask ``LocalCluster`` for one ``flow run --executor dask`` without a
scheduler address, in a process and session of its own.

``python -m flow.engine.run.local_cluster WORKERS THREADS FD``. Apart from
flow because a Ctrl-C in the terminal goes to its whole process group: it
must reach flow, which stops the jobs and then the cluster, not the
cluster's processes, which would die mid-job with tracebacks. It writes
the scheduler's address and a newline to descriptor FD, then serves until
its standard input ends: flow closed it, or flow died (even by kill -9),
so the cluster never outlives the run. Each worker offers its threads as
the resource ``threads``, which a job with ``threads: N`` takes N of.
"""

from __future__ import annotations

import logging
import os
import sys


def main(argv: list[str]) -> None:
    workers, threads, fd = (int(a) for a in argv)
    import warnings

    from distributed import LocalCluster

    warnings.filterwarnings("ignore", message="Port .* is already in use")  # (no dashboard is served)

    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                           dashboard_address=None, resources={"threads": threads}, silence_logs=logging.ERROR)
    try:
        os.write(fd, cluster.scheduler_address.encode() + b"\n")
        os.close(fd)
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        cluster.close(timeout=10)


if __name__ == "__main__":
    main(sys.argv[1:])
