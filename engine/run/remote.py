"""What a Dask worker runs for one of flow's jobs (``cluster.DaskExecutor``,
by way of ``trampoline``).

The job runs in a process of its own, in a session of its own, in the
directory flow runs in (the cluster shares its file system, as Snakemake's
cluster executors assume): a shell command through ``bash -euo pipefail
-c``; a Python job (``run:``, ``script:``, ``duckdb:``, ``mlx:``) in a
``flow.rules.worker`` of this worker's kept for the run, one job at a time,
as the local pool runs them (a new interpreter for each job would cost more
than most jobs; one kept longer would hold modules of the project that a
later run must import afresh). A process, not the worker's own thread: a job may change
directory, crash or be stopped without taking the worker with it.

Before each attempt what the job writes is removed again, and what is left
of an earlier attempt on this machine is stopped: a worker that died (its
nanny restarts it, Dask runs its tasks elsewhere) leaves its jobs running,
in sessions of their own. Each attempt notes its machine and process group
in ``.flow/scratch/cluster/`` for that.

Stopping (Ctrl-C, a ``runtime=`` exceeded): flow runs ``stop_jobs`` on
every worker (``Client.run``), which stops the run's attempts there,
SIGTERM to each one's process group and SIGKILL after a grace period, and
returns once they have ended, so that flow removes their outputs only then.
An attempt stopped before it started never starts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import xxhash
from flow.rules.shell import bash_argv
from flow.rules.worker import read_message, write_message

from .executor import Completion
from .files import remove_output
from .local import KILL_GRACE_SECONDS, StderrTail, command_failed, kill_group
from .processes import Usage, rusage_usage

NOTES = os.path.join(".flow", "scratch", "cluster")  # where attempts note their process groups
ALL = "*"  # stop_jobs: every attempt of the run

_lock = threading.Lock()
_running: dict[tuple[str, str], subprocess.Popen] = {}  # (run, task key) -> its process, on this worker
_stopped: set[tuple[str, str]] = set()  # (run, task key or ALL): not to start, or stopped
_idle: dict[str, tuple[str, list[_PythonWorker]]] = {}  # working directory -> run, its idle Python workers


def run_job(run: str, key: str, job_id: str, kind: str, payload: Any, ctx: Any, shared: bytes | None, cwd: str,
            outputs: tuple[str, ...]) -> Completion:
    """Run one attempt of a job here, on a worker (``key``: its Dask task's); how it ended."""
    if not os.path.isdir(cwd):
        return Completion(job_id, False, f"the working directory {cwd} does not exist on the Dask worker "
                                         f"{socket.gethostname()}: the cluster must share flow's file system, "
                                         "at the same path")
    note = os.path.join(cwd, NOTES, xxhash.xxh64_hexdigest(job_id.encode()))
    _stop_earlier(note, cwd)
    for path in outputs:
        remove_output(os.path.join(cwd, path))
    if kind == "shell":
        return _run_shell(run, key, job_id, payload, cwd, note)
    return _run_python(run, key, job_id, kind, payload, ctx, shared, cwd, note)


def _run_shell(run: str, key: str, job_id: str, command: str, cwd: str, note: str) -> Completion:
    try:
        proc = _start(run, key, lambda: subprocess.Popen(
            bash_argv(command), cwd=cwd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True))
    except OSError as e:
        return Completion(job_id, False, f"cannot start bash on the Dask worker: {e.strerror}")
    if proc is None:
        return Completion(job_id, False, "it was stopped")
    _note(note, proc.pid)
    tail = StderrTail(proc.stderr)
    _, status, rusage = os.wait4(proc.pid, 0)
    code = proc.returncode = os.waitstatus_to_exitcode(status)
    kill_group(proc.pid, signal.SIGKILL)  # (what it left running in its group goes too)
    stopped = _ended(run, key, note)
    usage = rusage_usage(rusage)
    if code == 0:
        return Completion(job_id, True, None, 0, usage=usage)
    if stopped:
        return Completion(job_id, False, "it was stopped", code, usage=usage)
    return Completion(job_id, False, command_failed(code), code, tail.text(), usage)


def _run_python(run: str, key: str, job_id: str, kind: str, payload: Any, ctx: Any, shared: bytes | None,
                cwd: str, note: str) -> Completion:
    try:
        worker = _start(run, key, lambda: _PythonWorker.take(cwd, run))
    except OSError as e:
        return Completion(job_id, False, f"cannot start Python on the Dask worker: {e.strerror}")
    if worker is None:
        return Completion(job_id, False, "it was stopped")
    _note(note, worker.pid)
    reply = worker.converse((job_id, kind, payload, ctx, shared))
    stopped = _ended(run, key, note)
    if reply is not None and not stopped:
        worker.give_back(cwd, run)
        _, error, measured = reply
        usage = Usage(**measured) if measured is not None else None
        return Completion(job_id, error is None, error, 0 if error is None else 1, usage=usage)
    worker.end()
    if stopped:
        return Completion(job_id, False, "it was stopped")
    return Completion(job_id, False, "the job's Python process on the Dask worker died", 1)


class _PythonWorker:
    """A ``flow.rules.worker`` process of this Dask worker's, for one working directory."""

    def __init__(self, cwd: str):
        r_req, w_req = os.pipe()
        r_res, w_res = os.pipe()
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "flow.rules.worker", str(r_req), str(w_res)],
                                         cwd=cwd, pass_fds=(r_req, w_res), stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            os.close(r_req)
            os.close(w_res)
        self.pid, self.wfd, self.rfd = self.proc.pid, w_req, r_res

    @classmethod
    def take(cls, cwd: str, run: str) -> _PythonWorker:
        """An idle worker of this run for ``cwd`` (called under ``_lock``), or
        a new one; those an earlier run left there end."""
        owner, idle = _idle.get(cwd, (run, []))
        if owner != run:
            for worker in idle:
                worker.end()
            idle = []
        _idle[cwd] = (run, idle)
        while idle:
            worker = idle.pop()
            if worker.proc.poll() is None:
                return worker
            worker.end()
        return cls(cwd)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def converse(self, message) -> tuple | None:
        """Send a job, and its answer (None if the worker died or was stopped)."""
        try:
            write_message(self.wfd, message)
            return read_message(self.rfd)
        except (OSError, EOFError, ValueError):
            return None

    def give_back(self, cwd: str, run: str) -> None:
        with _lock:
            owner, idle = _idle.get(cwd, (run, []))
            if owner != run:  # (a later run took over this directory)
                self.end()
                return
            _idle[cwd] = (run, [*idle, self])

    def end(self) -> None:
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        kill_group(self.pid, signal.SIGKILL)
        self.proc.wait()


def _start(run: str, key: str, start):
    """``start()``'s process, registered so that ``stop_jobs`` finds it; None
    if the attempt was stopped before it started."""
    with _lock:
        if (run, key) in _stopped or (run, ALL) in _stopped:
            return None
        proc = start()
        _running[(run, key)] = proc
        return proc


def _ended(run: str, key: str, note: str) -> bool:
    """The attempt's process has ended: forget it; whether it was stopped."""
    with _lock:
        del _running[(run, key)]
        stopped = (run, key) in _stopped or (run, ALL) in _stopped
        _stopped.discard((run, key))
    try:
        os.remove(note)
    except OSError:
        pass
    return stopped


async def stop_jobs(run: str, keys: list[str] | None, grace: float = KILL_GRACE_SECONDS) -> int:
    """Run on a worker (``Client.run``): stop the run's attempts ``keys``
    (None: all of them) here, and keep them from starting; return once they
    have ended, or a few seconds after SIGKILL (how many there were)."""
    import asyncio

    with _lock:
        _stopped.update((run, key) for key in (keys or [ALL]))
        procs = [p for (r, k), p in _running.items() if r == run and (keys is None or k in keys)]
    for proc in procs:
        kill_group(proc.pid, signal.SIGTERM)
    deadline, killed = time.monotonic() + grace, False
    while any(p.returncode is None for p in procs):
        if time.monotonic() > deadline:
            if killed:
                break  # (stuck in the kernel, on a hung file system: flow goes on)
            for proc in procs:
                kill_group(proc.pid, signal.SIGKILL)
            deadline, killed = time.monotonic() + 5, True
        await asyncio.sleep(0.02)
    return len(procs)


def end_run(run: str) -> None:
    """Run on a worker (``Client.run``) when the run ends: its idle Python
    workers end, and what it stopped is forgotten."""
    with _lock:
        ending = [cwd for cwd, (owner, _) in _idle.items() if owner == run]
        workers = [w for cwd in ending for w in _idle.pop(cwd)[1]]
        _stopped.difference_update({entry for entry in _stopped if entry[0] == run})
    for worker in workers:
        worker.end()


def _note(note: str, pgid: int) -> None:
    """Note the attempt's machine and process group for a later attempt (best effort)."""
    try:
        os.makedirs(os.path.dirname(note), exist_ok=True)
        with open(note, "w") as f:
            f.write(f"{socket.gethostname()} {pgid} {_started(pgid)}\n")
    except OSError:
        pass


def _started(pid: int | str) -> str:
    """When a process started (clock ticks since boot): with its id, it names
    one process, whatever later process gets that id."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[19].decode()


def _stop_earlier(note: str, cwd: str) -> None:
    """Stop what an earlier attempt of the job left running on this machine
    (its worker died): its process group, if that process is still the one noted."""
    try:
        with open(note) as f:
            host, pgid, started = f.read().split()
        if host != socket.gethostname() or _started(pgid) != started:
            return
    except (OSError, ValueError, IndexError):
        return
    kill_group(int(pgid), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pgid}") and time.monotonic() < deadline:
        time.sleep(0.01)


def shared_parts(ctx: Any) -> tuple[Any, bytes | None]:
    """A Python job's context without the build's globals and config, and
    those two pickled apart (as ``rules.worker`` takes them)."""
    if ctx is None:
        return None, None
    import pickle
    from dataclasses import replace

    shared = pickle.dumps((ctx.globals, ctx.config), protocol=pickle.HIGHEST_PROTOCOL)
    return replace(ctx, globals=None, config=None), shared
