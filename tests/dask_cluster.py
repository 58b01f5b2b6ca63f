"""A real ``LocalCluster`` for the Dask tests, in a process of its own (the
test process must not hold Dask's threads: other tests fork). Two workers,
"big" offering mem_mb=16000 and "small" 1000. Prints one JSON line, the
scheduler's address and each worker's process id by name, then serves
until its standard input ends.

    python tests/dask_cluster.py
"""

from __future__ import annotations

import json
import os
import sys
import warnings


def main() -> None:
    from distributed import Client, LocalCluster

    warnings.filterwarnings("ignore", message="Port .* is already in use")
    local = LocalCluster(n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None)
    (_, spec), = local.new_worker_spec().items()
    for name, mem in (("big", 16000), ("small", 1000)):
        local.worker_spec[name] = {"cls": spec["cls"],
                                   "options": {**spec["options"], "name": name, "resources": {"mem_mb": mem}}}
    local.sync(local._correct_state)
    with Client(local.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        names = {address: w["name"] for address, w in client.scheduler_info(n_workers=-1)["workers"].items()}
        pids = {names[address]: pid for address, pid in client.run(os.getpid).items()}
    print(json.dumps({"address": local.scheduler_address, "pids": pids}), flush=True)
    sys.stdin.read()
    local.close()


if __name__ == "__main__":
    main()
