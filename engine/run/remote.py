"""What a Dask worker runs for one of flow's jobs (``cluster.DaskExecutor``).

The job runs in a process of its own, in a session of its own, in the
directory flow runs in (the cluster shares its file system, as Snakemake's
cluster executors assume): a shell command through ``bash -euo pipefail
-c``, a Python job (``run:``, ``script:``, ``duckdb:``, ``mlx:``) in a
one-job ``flow.rules.worker``. A process, not the worker's own thread: a
job may change directory, crash or be stopped without taking the worker
with it. Before each attempt what the job writes is removed again: an
attempt on a worker that died may have left half of it.

Stopping (Ctrl-C, a ``runtime=`` exceeded): flow runs ``stop_jobs`` on
every worker (``Client.run``), which stops the run's jobs there, SIGTERM
to each one's process group and SIGKILL after a grace period, and returns
once they have ended, so that flow removes their outputs only then. A job
stopped before it started never starts.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from flow.rules.shell import bash_argv
from flow.rules.worker import read_message, write_message

from .executor import Completion
from .files import remove_output
from .processes import TAIL_BYTES, Usage, rusage_usage, tail_text

KILL_GRACE_SECONDS = 3.0


_lock = threading.Lock()
_running: dict[tuple[str, str], subprocess.Popen] = {}  # (run, job id) -> its process, on this worker
_stopped: set[tuple[str, str]] = set()  # (run, job id, or "*" for all of the run): not to start, or stopped


def run_job(run: str, job_id: str, kind: str, payload: Any, ctx: Any, shared: bytes | None, cwd: str,
            outputs: tuple[str, ...]) -> Completion:
    """Run one job here, on a worker; how it ended."""
    for path in outputs:
        remove_output(os.path.join(cwd, path))
    if kind == "shell":
        return _run_shell(run, job_id, payload, cwd)
    return _run_python(run, job_id, kind, payload, ctx, shared, cwd)


def _run_shell(run: str, job_id: str, command: str, cwd: str) -> Completion:
    proc = _start(run, job_id, bash_argv(command), cwd=cwd, stderr=subprocess.PIPE)
    if not isinstance(proc, subprocess.Popen):
        return Completion(job_id, False, proc)
    tail = _Tail(proc.stderr)
    code, usage, stopped = _wait(run, job_id, proc)
    if code == 0:
        return Completion(job_id, True, None, 0, usage=usage)
    if stopped:
        return Completion(job_id, False, "it was stopped", code, usage=usage)
    what = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    return Completion(job_id, False, f"the command failed ({what})", code, tail.text(), usage)


def _run_python(run: str, job_id: str, kind: str, payload: Any, ctx: Any, shared: bytes | None,
                cwd: str) -> Completion:
    r_req, w_req = os.pipe()
    r_res, w_res = os.pipe()
    proc = _start(run, job_id, [sys.executable, "-m", "flow.rules.worker", str(r_req), str(w_res)], cwd=cwd,
                  pass_fds=(r_req, w_res))
    os.close(r_req)
    os.close(w_res)
    if not isinstance(proc, subprocess.Popen):
        os.close(w_req)
        os.close(r_res)
        return Completion(job_id, False, proc)
    answer: list = []

    def converse() -> None:
        try:
            write_message(w_req, (job_id, kind, payload, ctx, shared))
            answer.append(read_message(r_res))
        except (OSError, EOFError, ValueError):
            pass
        finally:
            os.close(w_req)  # (the worker ends at the end of its input)
            os.close(r_res)

    threading.Thread(target=converse, daemon=True).start()
    code, _, stopped = _wait(run, job_id, proc)
    reply = answer[0] if answer else None
    if reply is not None and not stopped:
        _, error, measured = reply
        usage = Usage(**measured) if measured is not None else None
        return Completion(job_id, error is None, error, 0 if error is None else 1, usage=usage)
    if stopped:
        return Completion(job_id, False, "it was stopped", code)
    what = f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"
    return Completion(job_id, False, f"the job's Python process on the Dask worker ended ({what})", code)


def _start(run: str, job_id: str, argv: list[str], **popen) -> subprocess.Popen | str:
    """The job's process, registered so that ``stop_jobs`` finds it; or why
    it did not start (stopped already, or it could not be)."""
    with _lock:
        if (run, job_id) in _stopped or (run, "*") in _stopped:
            return "it was stopped"
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True, **popen)
        except OSError as e:
            return f"cannot start {argv[0]} on the Dask worker: {e.strerror}"
        _running[(run, job_id)] = proc
        return proc


def _wait(run: str, job_id: str, proc: subprocess.Popen) -> tuple[int, Usage | None, bool]:
    """Wait for the job's process; its exit code (negative: a signal), what
    it used, and whether ``stop_jobs`` stopped it."""
    _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    _kill_group(proc.pid, signal.SIGKILL)  # (what it left running in its group goes too)
    with _lock:
        del _running[(run, job_id)]
        stopped = (run, job_id) in _stopped or (run, "*") in _stopped
    return proc.returncode, rusage_usage(rusage), stopped


async def stop_jobs(run: str, job_ids: list[str] | None, grace: float = KILL_GRACE_SECONDS) -> int:
    """Run on a worker (``Client.run``): stop the run's jobs ``job_ids``
    (None: all of them) here, and keep them from starting; return once
    they have ended (how many there were)."""
    import asyncio

    with _lock:
        _stopped.update((run, job_id) for job_id in (job_ids or ["*"]))
        procs = [p for (r, j), p in _running.items() if r == run and (job_ids is None or j in job_ids)]
    for proc in procs:
        _kill_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(p.returncode is None for p in procs):
        if time.monotonic() > deadline:
            for proc in procs:
                _kill_group(proc.pid, signal.SIGKILL)
            deadline = float("inf")
        await asyncio.sleep(0.02)
    return len(procs)


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _Tail:
    """The job's stderr passed on to the worker's, its end kept for a failure's message."""

    def __init__(self, pipe):
        self.pipe, self.kept = pipe, bytearray()
        self.thread = threading.Thread(target=self._forward, daemon=True)
        self.thread.start()

    def _forward(self) -> None:
        fd = self.pipe.fileno()
        try:
            while chunk := os.read(fd, 65536):
                os.write(2, chunk)
                self.kept += chunk
                del self.kept[:-TAIL_BYTES]
        except OSError:
            pass
        finally:
            self.pipe.close()

    def text(self) -> str | None:
        self.thread.join(1.0)
        return tail_text(bytes(self.kept))


def shared_parts(ctx: Any) -> tuple[Any, bytes | None]:
    """A Python job's context without the build's globals and config, and
    those two pickled apart (as ``rules.worker`` takes them)."""
    if ctx is None:
        return None, None
    from dataclasses import replace

    shared = pickle.dumps((ctx.globals, ctx.config), protocol=pickle.HIGHEST_PROTOCOL)
    return replace(ctx, globals=None, config=None), shared
