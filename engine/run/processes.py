"""One thread that watches every running shell job (Linux), and what a
benchmarked job's processes use (``Usage``, ``Sampler``).

Each shell job needs two waits: for its exit (to reap it, with its resource
use) and for its stderr (passed through to flow's as it comes, its end kept
for a failure message). Two threads per job cost more than a trivial job
itself; here a process file descriptor (``os.pidfd_open``) and the stderr
pipe of every job go into one selector, served by one thread. Where pidfds
do not exist (macOS, old kernels) the executor keeps a thread per wait.

A job's ``benchmark:`` file has Snakemake's columns. What the kernel counts
for a whole tree of processes once it has ended (CPU time, peak RSS of its
largest process, bytes read from and written to storage) comes from
``wait4``; what only a running process shows (virtual, unique and
proportional memory) is sampled from /proc while it runs, on Snakemake's
schedule, summed over the job's process group.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from flow.rules.worker import group_members, peak_rss_kb

TAIL_BYTES = 16 * 1024
TAIL_LINES = 10
PIPE_GRACE_SECONDS = 0.5  # a process the job left behind may hold its stderr open

# Where the jobs' stderr goes: flow's stderr, or, while a progress bar is
# drawn there, the bar's display, which writes it above the bar.
stderr_sink: Callable[[bytes], None] | None = None


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


@dataclass(frozen=True)
class Usage:
    """What a job's processes used; None where it could not be measured."""

    max_rss_kb: int | None = None
    cpu_seconds: float | None = None
    io_in_bytes: int | None = None
    io_out_bytes: int | None = None
    max_vms_kb: int | None = None
    max_uss_kb: int | None = None
    max_pss_kb: int | None = None

    def with_peaks(self, peaks: Peaks | None) -> Usage:
        """This usage with the memory peaks sampled while the job ran."""
        if peaks is None or not peaks.samples:
            return self
        rss = max(self.max_rss_kb or 0, peaks.rss_kb)
        return replace(self, max_rss_kb=rss, max_vms_kb=peaks.vms_kb, max_uss_kb=peaks.uss_kb,
                       max_pss_kb=peaks.pss_kb)


def rusage_usage(usage) -> Usage:
    """A waited-for process tree's use, as ``wait4`` counts it: its largest
    process's peak RSS, its CPU time, and its block I/O (in 512-byte units).
    A child's peak counts the memory of flow it was forked from (the kernel
    carries it over the exec), so a peak no higher than flow's own says
    nothing of the job: it is left unknown (None)."""
    rss: int | None = _kb(usage.ru_maxrss)
    if rss <= own_peak_kb():
        rss = None
    return Usage(rss, usage.ru_utime + usage.ru_stime, usage.ru_inblock * 512, usage.ru_oublock * 512)


def own_peak_kb() -> int:
    """flow's own peak RSS, as a child forked now would inherit it: its
    memory's high-water mark (``VmHWM``), not ``getrusage``'s, which also
    holds the peak of whatever flow was itself started from (pytest, a
    notebook) and would hide a job's figure below it."""
    peak = peak_rss_kb()
    return peak if peak is not None else _kb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _kb(maxrss: int) -> int:
    return maxrss // 1024 if sys.platform == "darwin" else maxrss  # (bytes there)


@dataclass
class Peaks:
    """The largest sums over a process group, in KB, of the samples taken so far."""

    rss_kb: int = 0
    vms_kb: int = 0
    uss_kb: int = 0
    pss_kb: int = 0
    samples: int = 0


SAMPLE_SECONDS = 0.5  # as Snakemake's benchmark: twice a second at first,
SLOW_AFTER = 30  # then, after this many samples,
SLOW_SAMPLE_SECONDS = 30.0  # every half minute


class Sampler:
    """Samples the memory of benchmarked jobs' process groups while they run,
    in one thread, started when the first is."""

    def __init__(self):
        self.cond = threading.Condition()
        self.groups: dict[str, tuple[int, Peaks, float]] = {}  # job id -> pgid, peaks, next sample
        self.thread: threading.Thread | None = None
        self.closed = False

    def start(self, job_id: str, pgid: int) -> None:
        """Sample a job's group now (a job may end within the first half
        second) and from now on, until ``stop``."""
        peaks = Peaks()
        sample_group(pgid, peaks)
        with self.cond:
            self.groups[job_id] = (pgid, peaks, time.monotonic() + SAMPLE_SECONDS)
            if self.thread is None:
                self.thread = threading.Thread(target=self._serve, name="flow-benchmark", daemon=True)
                self.thread.start()
            self.cond.notify()

    def stop(self, job_id: str) -> Peaks | None:
        """The peaks of a job that has ended (None if it was not sampled)."""
        with self.cond:
            entry = self.groups.pop(job_id, None)
        return entry[1] if entry else None

    def close(self) -> None:
        """End the thread (``flow watch`` makes an executor per build)."""
        with self.cond:
            self.closed = True
            self.groups.clear()
            self.cond.notify()

    def _serve(self) -> None:
        while True:
            with self.cond:
                if self.closed:
                    return
                now = time.monotonic()
                due = [(job_id, pgid, peaks) for job_id, (pgid, peaks, at) in self.groups.items() if at <= now]
                if not due:
                    nearest = min((at for _, _, at in self.groups.values()), default=None)
                    self.cond.wait(None if nearest is None else nearest - now)
                    continue
            for job_id, pgid, peaks in due:  # (outside the lock: a sample reads /proc)
                sample_group(pgid, peaks)
                step = SAMPLE_SECONDS if peaks.samples <= SLOW_AFTER else SLOW_SAMPLE_SECONDS
                with self.cond:
                    if job_id in self.groups:
                        self.groups[job_id] = (pgid, peaks, time.monotonic() + step)


def sample_group(pgid: int, peaks: Peaks) -> None:
    """Add one sample of a process group's memory (summed over its members)
    to ``peaks``; nothing if none of its processes could be read."""
    rss = vms = uss = pss = 0
    seen = False
    for pid in group_members(pgid):
        status = _kb_fields(f"/proc/{pid}/status", ("VmRSS:", "VmSize:"))
        if not status:  # (gone, or a zombie: no memory left to count)
            continue
        rollup = _kb_fields(f"/proc/{pid}/smaps_rollup", ("Pss:", "Private_Clean:", "Private_Dirty:"))
        rss += status.get("VmRSS:", 0)
        vms += status.get("VmSize:", 0)
        pss += rollup.get("Pss:", 0)
        uss += rollup.get("Private_Clean:", 0) + rollup.get("Private_Dirty:", 0)
        seen = True
    if seen:
        peaks.rss_kb, peaks.vms_kb = max(peaks.rss_kb, rss), max(peaks.vms_kb, vms)
        peaks.uss_kb, peaks.pss_kb = max(peaks.uss_kb, uss), max(peaks.pss_kb, pss)
        peaks.samples += 1


def _kb_fields(path: str, names: tuple[str, ...]) -> dict[str, int]:
    """Lines ``Name:  123 kB`` of a /proc file, by name; {} if it cannot be read."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] in names and words[1].isdigit():
            out[words[0]] = int(words[1])
    return out


class _Watched:
    __slots__ = ("job_id", "proc", "pidfd", "err", "kept", "exit", "deadline")

    def __init__(self, job_id: str, proc: subprocess.Popen, pidfd: int):
        self.job_id, self.proc, self.pidfd = job_id, proc, pidfd
        self.err: int | None = proc.stderr.fileno()
        self.kept = bytearray()
        self.exit: tuple[int, Usage | None] | None = None  # exit code, what it used
        self.deadline: float | None = None  # when to report it although its stderr is still open


# what the executor is told: job id, exit code, what it used (wait4's count), stderr tail
Ended = Callable[[str, int, "Usage | None", "str | None"], None]


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
            pass_stderr(chunk)
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
            w.exit = (code, rusage_usage(usage))
        except ChildProcessError:
            w.exit = (w.proc.wait(), None)
        w.proc.returncode = w.exit[0]
        if w.err is None or w.exit[0] == 0:
            self._report(w)  # (a job that succeeded needs no stderr tail: no wait for its pipe)
        else:
            w.deadline = time.monotonic() + PIPE_GRACE_SECONDS
            self.waiting[w.job_id] = w

    def _report(self, w: _Watched) -> None:
        self.waiting.pop(w.job_id, None)
        code, usage = w.exit
        self.ended(w.job_id, code, usage, tail_text(bytes(w.kept)) if code != 0 else None)


def end_leftovers(pgid: int) -> None:
    """Kill what a shell job left running in its process group (``cmd &``),
    so that nothing of a finished job runs on. Called once its shell has
    exited but before it is reaped: until then no other process can have
    the group's id."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def pass_stderr(chunk: bytes) -> None:
    """What a job wrote to its stderr, passed on as it came (see ``stderr_sink``)."""
    sink = stderr_sink
    if sink is None:
        write_all(2, chunk)
    else:
        sink(chunk)


def write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # flow's stderr is gone (a closed pipe): keep the tail all the same
