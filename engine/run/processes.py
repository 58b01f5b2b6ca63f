"""One thread that watches every running shell job (Linux).

Each shell job needs two waits: for its exit (to reap it, with its resource
use) and for its stderr (passed through to flow's as it comes, its end kept
for a failure message). Two threads per job cost more than a trivial job
itself; here a process file descriptor (``os.pidfd_open``) and the stderr
pipe of every job go into one selector, served by one thread. Where pidfds
do not exist (macOS, old kernels) the executor keeps a thread per wait.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable

TAIL_BYTES = 16 * 1024
TAIL_LINES = 10
PIPE_GRACE_SECONDS = 0.5  # a process the job left behind may hold its stderr open


def available() -> bool:
    """Whether this system has process file descriptors."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
        return True
    except OSError:
        return False


def tail_text(kept: bytes) -> str | None:
    """The last lines a job wrote to stderr, for its failure message."""
    lines = kept.decode(errors="replace").rstrip("\n").split("\n")[-TAIL_LINES:]
    return "\n".join(ln[:300] for ln in lines) if any(ln.strip() for ln in lines) else None


class _Watched:
    __slots__ = ("job_id", "proc", "pidfd", "err", "kept", "exit", "deadline")

    def __init__(self, job_id: str, proc: subprocess.Popen, pidfd: int):
        self.job_id, self.proc, self.pidfd = job_id, proc, pidfd
        self.err: int | None = proc.stderr.fileno()
        self.kept = bytearray()
        self.exit: tuple[int, int | None, float | None] | None = None  # code, max rss, cpu seconds
        self.deadline: float | None = None  # when to report it although its stderr is still open


# what the executor is told: job id, exit code, max rss (KB), cpu seconds, stderr tail
Ended = Callable[[str, int, "int | None", "float | None", "str | None"], None]


class JobWatcher:
    def __init__(self, ended: Ended):
        self.ended = ended
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.incoming: list[_Watched] = []
        self.lock = threading.Lock()
        self.waiting: dict[str, _Watched] = {}  # exited, stderr still open
        self.closing = False
        self.thread = threading.Thread(target=self._serve, name="flow-jobs", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop the thread and free its descriptors, once no job is left to
        follow (``flow watch`` makes a watcher per build)."""
        if self.closing:
            return
        self.closing = True
        try:
            os.write(self.wake_w, b"!")
        except OSError:
            pass
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.selector.close()
            os.close(self.wake_r)
            os.close(self.wake_w)

    def watch(self, job_id: str, proc: subprocess.Popen) -> None:
        """Follow a started job until it has exited (then call ``ended`` once)."""
        w = _Watched(job_id, proc, os.pidfd_open(proc.pid))
        with self.lock:
            self.incoming.append(w)
        try:
            os.write(self.wake_w, b"!")
        except BlockingIOError:
            pass  # the loop is already woken

    def _serve(self) -> None:
        while not self.closing:
            timeout = None
            if self.waiting:
                timeout = max(0.0, min(w.deadline for w in self.waiting.values()) - time.monotonic())
            for key, _ in self.selector.select(timeout):
                if key.data is None:
                    self._take_incoming()
                elif key.fd == key.data.pidfd:
                    self._exited(key.data)
                else:
                    self._stderr(key.data)
            now = time.monotonic()
            for w in [w for w in self.waiting.values() if w.deadline <= now]:
                self._report(w)

    def _take_incoming(self) -> None:
        try:
            os.read(self.wake_r, 4096)
        except BlockingIOError:
            pass
        with self.lock:
            incoming, self.incoming = self.incoming, []
        for w in incoming:
            self.selector.register(w.pidfd, selectors.EVENT_READ, w)
            self.selector.register(w.err, selectors.EVENT_READ, w)

    def _stderr(self, w: _Watched) -> None:
        try:
            chunk = os.read(w.err, 65536)
        except OSError:
            chunk = b""
        if chunk:
            write_all(2, chunk)
            w.kept += chunk
            del w.kept[:-TAIL_BYTES]
            return
        self.selector.unregister(w.err)
        w.proc.stderr.close()
        w.err = None
        if w.exit is not None and w.job_id in self.waiting:
            self._report(w)

    def _exited(self, w: _Watched) -> None:
        self.selector.unregister(w.pidfd)
        os.close(w.pidfd)
        end_leftovers(w.proc.pid)
        try:
            _, status, usage = os.wait4(w.proc.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            w.exit = (code, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
        except ChildProcessError:
            w.exit = (w.proc.wait(), None, None)
        w.proc.returncode = w.exit[0]
        if w.err is None or w.exit[0] == 0:
            self._report(w)  # (a job that succeeded needs no stderr tail: no wait for its pipe)
        else:
            w.deadline = time.monotonic() + PIPE_GRACE_SECONDS
            self.waiting[w.job_id] = w

    def _report(self, w: _Watched) -> None:
        self.waiting.pop(w.job_id, None)
        code, rss, cpu = w.exit
        self.ended(w.job_id, code, rss, cpu, tail_text(bytes(w.kept)) if code != 0 else None)


def end_leftovers(pgid: int) -> None:
    """Kill what a shell job left running in its process group (``cmd &``),
    so that nothing of a finished job runs on. Called once its shell has
    exited but before it is reaped: until then no other process can have
    the group's id."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # flow's stderr is gone (a closed pipe): keep the tail all the same
