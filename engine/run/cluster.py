"""The Dask executor: jobs run on a Dask cluster instead of this machine's
process pool (``flow run --executor dask``), behind the same interface
(``executor.Executor``), so the scheduler and the rebuilder do not know
which one runs.

With a scheduler address flow connects to that cluster; without one it
starts a ``LocalCluster`` of its own (``local_cluster``), closed when the
run ends. A job goes to a worker as a task that runs it in a process
(``remote.run_job``); its outputs are checked and hashed here, in flow's
process, when the task ends. ``localrules:`` jobs and the checks of
``schema:`` run here, on the local executor.

Placement: a job's ``threads`` and its numeric ``resources`` become the
task's Dask resources, for the names the cluster's workers offer (a
worker started with ``--resources mem_mb=16000``; flow's own cluster
offers ``threads``), so a ``mem_mb=8000`` job goes only to a worker that
has it. A name no worker offers is not counted, as ``--resources`` counts
only the names it gives. A job that needs more than any worker offers
fails at once with a message, instead of waiting for ever.

In flight: a task waits on its way to a worker and back for a few
milliseconds, so flow keeps up to ``IN_FLIGHT`` times ``-j`` jobs
submitted (the scheduler's window), and the cluster's workers, by their
threads and resources, bound what runs at once, as Snakemake's ``--jobs``
bounds what it submits to a cluster. What stays here runs at most ``-j``
at once all the same.

Worker loss: Dask runs the task of a worker that died again on another
worker (up to its ``allowed-failures``); that is not the job failing and
costs none of its ``retries:``. Stopping (Ctrl-C, ``runtime=``): flow
asks every worker to stop the run's jobs there (``remote.stop_jobs``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections import deque

from ..errors import UserError
from . import trampoline
from .executor import Completion, Task
from .local import KILL_GRACE_SECONDS, LocalExecutor
from .remote import end_run, shared_parts, stop_jobs

CONNECT_SECONDS = 20.0
IN_FLIGHT = 4  # jobs submitted per -j (see above)
OFFERS_SECONDS = 5.0  # how long what the workers offer is taken as known (asking is a round trip)


class DaskExecutor:
    def __init__(self, address: str | None, cores: int, local: LocalExecutor):
        """``address``: the cluster's scheduler (None: start a local one with
        ``cores`` threads); ``local``: runs what stays on this machine, and
        takes this executor's completions into its queue."""
        from distributed import Client

        self.local = local
        self.cores = cores
        self.local_running: set[str] = set()
        self.local_waiting: deque[Task] = deque()  # (beyond -j of them at once: as without a cluster)
        self.done: queue.SimpleQueue[Completion] = local.done
        self.cwd = os.getcwd()
        self.host = _start_local_cluster(cores) if address is None else None
        self.address = address or self.host.address
        try:
            self.client = Client(self.address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:  # (ValueError: an address Dask cannot read)
            self._stop_host()
            raise UserError(f"cannot reach the Dask scheduler at {self.address}: {e}",
                            "Start one (`dask scheduler`, then `dask worker ADDRESS`) and give its address "
                            "to --scheduler-address, or leave the option out to use a local cluster.") from None
        self.run = uuid.uuid4().hex[:12]
        self.entry = trampoline.entry()
        self.futures: dict[str, object] = {}
        self.lock = threading.Lock()
        self.attempt = 0
        self.offers: list[dict[str, float]] = []  # each worker's resources, as last asked
        self.offers_asked = -OFFERS_SECONDS

    # the interface -------------------------------------------------------------------

    def submit(self, task: Task) -> None:
        if task.local:
            self.local_waiting.append(task)
            self._start_local()
            return
        need, problem = self._placement(task)
        if problem is not None:
            self.done.put(Completion(task.job_id, False, problem))
            return
        ctx, shared = shared_parts(task.ctx)
        self.attempt += 1
        key = f"flow-{self.run}-{self.attempt}"
        blob = pickle.dumps((self.run, key, task.job_id, task.kind, task.payload, ctx, shared, self.cwd,
                             task.outputs), protocol=pickle.HIGHEST_PROTOCOL)
        future = self.client.submit(self.entry, blob, key=key,
                                    resources=need or None, pure=False)
        with self.lock:
            self.futures[task.job_id] = future
        future.add_done_callback(lambda f, job_id=task.job_id: self._ended(job_id, f))

    def wait(self, timeout: float | None) -> list[Completion]:
        done = self.local.wait(timeout)
        for c in done:
            self.local_running.discard(c.job_id)
        self._start_local()
        return done

    def _start_local(self) -> None:
        while self.local_waiting and len(self.local_running) < self.cores:
            task = self.local_waiting.popleft()
            self.local_running.add(task.job_id)
            self.local.submit(task)

    def cancel(self, job_id: str) -> None:
        with self.lock:
            future = self.futures.get(job_id)
        if future is not None:
            self.client.run(stop_jobs, self.run, [future.key], wait=False)
        else:
            self.local.cancel(job_id)

    def shutdown(self) -> None:
        """Stop what still runs on the cluster and wait until it has ended,
        close the connection and the local cluster; then the local executor."""
        with self.lock:
            futures = list(self.futures.values())
        steps = [lambda: self.client.run(stop_jobs, self.run, None, KILL_GRACE_SECONDS),
                 lambda: self.client.cancel(futures)] if futures else []
        for step in [*steps, lambda: self.client.run(end_run, self.run), lambda: self.client.close(timeout=5)]:
            try:  # (each on its own: one failing must not skip the next)
                step()
            except Exception:  # noqa: BLE001 - a cluster gone already has nothing left to stop
                pass
        self._stop_host()
        self.local.shutdown()

    def hurry(self) -> None:
        self.local.hurry()  # (the cluster's jobs get their grace period: it is short)

    def warm(self, kinds: set[str]) -> None:
        """Workers import what their jobs need on first use; locally nothing runs early."""

    def benchmark(self, job_id: str) -> None:
        self.local.benchmark(job_id)  # (a job on the cluster says what it used in any case)

    # placing and ending ----------------------------------------------------------------

    def _workers(self, fresh: bool = False) -> list[dict[str, float]]:
        """What each worker of the cluster offers (asked again after a while:
        workers come and go)."""
        if fresh or time.monotonic() - self.offers_asked > OFFERS_SECONDS:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {}).values()
            self.offers = [dict(w.get("resources") or {}) for w in workers]
            self.offers_asked = time.monotonic()
        return self.offers

    def _placement(self, task: Task) -> tuple[dict[str, float], str | None]:
        """The task's Dask resources, or why no worker can run it."""
        need, problem = self._fitted(task, self._workers())
        if problem is not None:  # (a worker that offers it may have joined since)
            need, problem = self._fitted(task, self._workers(fresh=True))
        return need, problem

    def _fitted(self, task: Task, workers: list[dict[str, float]]) -> tuple[dict[str, float], str | None]:
        offered: dict[str, float] = {}
        for w in workers:
            for name, amount in w.items():
                offered[name] = max(offered.get(name, 0), amount)
        wanted = {name: value for name, value in task.resources.items()
                  if name != "runtime" and not isinstance(value, str)}
        wanted["threads"] = task.threads
        need = {name: value for name, value in wanted.items() if name in offered and value > 0}
        if "threads" in need:  # (as -j caps a job's threads: at what the largest worker has)
            need["threads"] = min(need["threads"], offered["threads"])
        for name, value in need.items():
            if not any(w.get(name, 0) >= value for w in workers):
                return need, (f"it needs {name}={value:g}, but no worker of the Dask cluster at {self.address} "
                              f"offers that much (the most one offers: {offered[name]:g}); start a worker "
                              f"with `dask worker --resources {name}={value:g}`, or lower the rule's resources:")
        return need, None

    def _ended(self, job_id: str, future) -> None:
        with self.lock:
            if self.futures.get(job_id) is future:
                del self.futures[job_id]
        self.done.put(_completion(job_id, future, self.address))

    def _stop_host(self) -> None:
        if self.host is not None and not (_kept and self.host in _kept.values()):
            self.host.close()
        self.host = None


def _completion(job_id: str, future, address: str) -> Completion:
    """How a task ended, as the scheduler reads a job's end."""
    if future.status == "finished":
        try:
            result = future.result()
        except Exception as e:  # noqa: BLE001 - its result could not be read back
            return Completion(job_id, False, f"its result could not be read from the Dask cluster: {e}")
        if isinstance(result, tuple) and result[0] == trampoline.NO_FLOW:
            return Completion(job_id, False, f"a worker of the Dask cluster at {address} cannot import flow "
                                             f"({result[1]}); install flow on every worker (pip install flow), "
                                             "the same version as here")
        return result
    if future.status == "cancelled":
        return Completion(job_id, False, "it was stopped")
    error = future.exception()
    from distributed import KilledWorker

    if isinstance(error, KilledWorker):
        return Completion(job_id, False, "the Dask workers running it died, again and again (it may need more "
                                         "memory than a worker has)")
    return Completion(job_id, False, f"its Dask task failed: {type(error).__name__}: {error}")


class _LocalClusterHost:
    """The process that holds flow's own ``LocalCluster`` (``local_cluster``)."""

    def __init__(self, workers: int, threads: int):
        r, w = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-m", "flow.engine.run.local_cluster", str(workers),
                                      str(threads), str(w)], pass_fds=(w,), stdin=subprocess.PIPE,
                                     start_new_session=True)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            line = f.readline()
        if not line:
            self.close()
            raise UserError("the local Dask cluster did not start (its error is above)",
                            "Check that dask[distributed] is installed: pip install 'flow[dask]'.")
        self.address = line.decode().strip()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


_kept: dict[int, _LocalClusterHost] | None = None  # cores -> a local cluster kept between builds


@contextlib.contextmanager
def local_clusters_kept():
    """While in it, the local cluster a build starts outlives the build, for
    the next (``flow watch`` builds again and again: a cluster takes seconds
    to start); it is closed on the way out."""
    global _kept
    _kept = {}
    try:
        yield
    finally:
        kept, _kept = _kept, None
        for host in kept.values():
            host.close()


def _start_local_cluster(cores: int) -> _LocalClusterHost:
    """Two workers sharing ``cores`` threads (one with a single core): enough
    to run jobs side by side, each worker able to take a job of half the threads."""
    if _kept is not None and cores in _kept and _kept[cores].proc.poll() is None:
        return _kept[cores]
    workers = 2 if cores >= 2 else 1
    host = _LocalClusterHost(workers, -(-cores // workers))
    if _kept is not None:
        _kept[cores] = host
    return host
