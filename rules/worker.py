"""A long-lived Python worker: runs the jobs the engine sends, one at a time,
each by its kind's ``execute`` from the registry (``flow.rules``): every
action kind but shell, and the checks of ``schema:``.

Protocol, over two pipes whose descriptors are given as arguments:
each message is a 4-byte big-endian length and a pickle. The engine sends
``(job_id, kind, payload, ctx, shared)``; the worker answers ``(job_id,
error, usage)`` with ``error`` None on success, else the text to show the
user, and ``usage`` what the job used (for the run history and a
``benchmark:`` file). The Flowfile's globals and config are the same for
every job of a build and may be large (a list of every sample): they are
sent once, as ``shared`` = the pickle of ``(globals, config)``, and left
out of the contexts; each job unpickles its own copy (``shared`` None: the
last one sent).
Stdout and stderr stay the job's own. What a job leaves running in the
worker's process group is killed when the job ends, as for shell jobs.
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import struct
import sys

from . import runner
from .base import ActionError, JobFailed

_HEADER = struct.Struct(">I")


def read_message(fd: int):
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    body = _read_exact(fd, size)
    if body is None:
        return None
    return pickle.loads(body)


def write_message(fd: int, message) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    data = _HEADER.pack(len(body)) + body
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def run_job(kind: str, payload, ctx) -> str | None:
    """Run one job here; None on success, else what to tell the user."""
    from .python import user_traceback

    try:
        execute = runner(kind).execute
    except ActionError as e:
        return str(e)
    try:
        execute(payload, ctx)
    except JobFailed as e:
        return str(e)
    except SystemExit as e:
        if e.code in (None, 0):
            return None
        return f"the job called exit({e.code!r})"
    except BaseException as e:  # the user's code may raise anything
        return user_traceback(e)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return None


def measured_job(kind: str, payload, ctx) -> tuple[str | None, dict]:
    """Run one job here and say what it used: CPU time and bytes read from
    and written to storage (this process and the children the job waited
    for), and its peak RSS (the worker's high-water mark, reset before the
    job where Linux allows; a child's peak if one went higher)."""
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    fresh_peak = _reset_peak_rss()
    error = run_job(kind, payload, ctx)
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)

    def delta(name: str) -> float:
        return (getattr(self_after, name) - getattr(self_before, name)
                + getattr(children_after, name) - getattr(children_before, name))

    peaks = [peak_rss_kb()] if fresh_peak else []
    if children_after.ru_maxrss > children_before.ru_maxrss:  # (a child of this job's set a new peak)
        peaks.append(children_after.ru_maxrss // (1024 if sys.platform == "darwin" else 1))  # (bytes on macOS)
    usage = {
        "cpu_seconds": delta("ru_utime") + delta("ru_stime"),
        "io_in_bytes": int(delta("ru_inblock")) * 512,
        "io_out_bytes": int(delta("ru_oublock")) * 512,
        "max_rss_kb": max((p for p in peaks if p is not None), default=None),
    }
    return error, usage


_PROC_FDS: dict[str, int | None] = {}  # /proc/self files kept open: a job's measure costs two calls


def _proc_fd(name: str, flags: int) -> int | None:
    if name not in _PROC_FDS:
        try:
            _PROC_FDS[name] = os.open(f"/proc/self/{name}", flags)
        except OSError:
            _PROC_FDS[name] = None
    return _PROC_FDS[name]


def _reset_peak_rss() -> bool:
    """Set this process's peak RSS to its current RSS (Linux 4.0+), so that
    the peak read after a job is the job's."""
    fd = _proc_fd("clear_refs", os.O_WRONLY)
    try:
        return fd is not None and os.write(fd, b"5") == 1
    except OSError:
        return False


def peak_rss_kb() -> int | None:
    """This process's memory high-water mark (``VmHWM``, Linux); None elsewhere."""
    fd = _proc_fd("status", os.O_RDONLY)
    try:
        text = os.pread(fd, 8192, 0) if fd is not None else b""
        start = text.index(b"VmHWM:") + 6
        return int(text[start:text.index(b"kB", start)])
    except (OSError, ValueError):
        return None


def warm(kinds: list[str]) -> None:
    """Import the modules jobs of these kinds need, before the first arrives."""
    for kind in kinds:
        try:
            runner(kind).warm()
        except Exception:  # noqa: BLE001 (the job itself will say what is missing)
            pass


def become_subreaper() -> bool:
    """Make the orphans of a job's processes this worker's children (Linux),
    so that one system call after each job tells whether any is left."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def end_leftovers() -> None:
    """Kill what the last job left running in this worker's process group
    (``Popen(...)`` never waited for) and reap it; with no child at all,
    the usual case, this costs one ``waitpid``."""
    if not _reap_ended():
        return
    me = os.getpid()
    for pid in group_members(os.getpgrp()):
        if pid != me:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    _reap_ended()


def _reap_ended() -> bool:
    """Reap children that have ended; whether any is still running."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group (from /proc; none without it)."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def main(argv: list[str]) -> None:
    rfd, wfd = int(argv[0]), int(argv[1])
    home = os.getcwd()
    reaper = become_subreaper()
    shared = pickle.dumps(({}, {}))  # the build's globals and config, as last sent
    while True:
        message = read_message(rfd)
        if message is None:
            return
        job_id, kind, payload, ctx, sent = message
        if job_id is None:  # a warm-up: import what the coming jobs need; nothing to answer
            warm(payload)
            continue
        if sent is not None:
            shared = sent
        if ctx is not None:  # (each job its own copy: what one job changes, the next does not see)
            ctx.globals, ctx.config = pickle.loads(shared)
        error, usage = measured_job(kind, payload, ctx)
        os.chdir(home)  # a job may change directory (scripts often do); the next starts where flow runs
        if reaper:
            end_leftovers()
        write_message(wfd, (job_id, error, usage))


if __name__ == "__main__":
    main(sys.argv[1:])
