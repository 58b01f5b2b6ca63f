"""One runner per working directory, and what is left of a runner that died.

The lock is an OS lock (flock) on the ``.flow`` directory itself, not on a
file in it: removing ``.flow/lock`` by habit (as Snakemake users do) cannot
let a second runner in. The kernel drops it when its holder dies, however
it dies, so there is never a stale lock to remove by hand.

Jobs do not inherit the lock, so nothing a job leaves behind can lock the
directory. Instead every process a run starts carries ``FLOW_RUN_ID`` in its
environment, and ``.flow/lock`` says which run holds the directory (its pid
and id) until that run ends cleanly. A runner that takes the lock and finds
another run's record there knows that run died (kill -9, a crash): it stops
the processes that still carry that run's id, whose outputs were never
recorded and will be made again, before it touches any file.

Where processes cannot be found by their environment (no ``/proc``), jobs
inherit the lock as before (``inherited_fds``): a dead runner's jobs then
keep the directory until they end.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
import uuid

from ..errors import LockHeld, UserError

ENV_NAME = "FLOW_RUN_ID"
STOP_GRACE_SECONDS = 3.0


class RunLock:
    def __init__(self, directory: str):
        self.directory = directory
        self.path = os.path.join(directory, "lock")  # who holds it: "pid run-id", for messages and the next run
        self.fd: int | None = None
        self.run_id = uuid.uuid4().hex
        self.stopped: tuple[str, int] | None = None  # (dead runner's pid, processes stopped), to say so

    def acquire(self) -> RunLock:
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(
                f"another flow run (pid {self._holder()[0] or 'unknown'}) is running in {os.getcwd()}",
                "Wait for it to finish, or stop it (Ctrl-C in its terminal, or kill PID); "
                "read-only commands (run -n, list, dag) work meanwhile.",
            ) from None
        self.fd = fd
        self._stop_dead_run()
        try:
            _write_file(self.path, f"{os.getpid()} {self.run_id}\n")
        except OSError as e:
            self.release()
            raise UserError(f"cannot write {self.path}: {e.strerror}",
                            "Free some space, or make .flow/ writable, and run again.") from None
        return self

    def _holder(self) -> tuple[str | None, str | None]:
        """The pid and run id that ``.flow/lock`` names, if any."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                words = f.read(200).split()
        except OSError:
            return None, None
        if len(words) != 2:
            return (words[0] if words else None), None
        return words[0], words[1]

    def _stop_dead_run(self) -> None:
        """The run named in ``.flow/lock`` did not end cleanly (we hold the
        lock, so it is not running): stop what it left running."""
        pid, run_id = self._holder()
        if run_id is None or run_id == self.run_id:
            return
        left = run_processes(run_id)
        if left:
            stop_processes(left)
            self.stopped = (pid or "unknown", len(left))

    def stopped_text(self) -> str | None:
        """One line saying what a dead run had left running, if anything."""
        if self.stopped is None:
            return None
        pid, n = self.stopped
        what = "1 process" if n == 1 else f"{n} processes"
        return (f"flow: stopped {what} left running by flow run (pid {pid}), which ended without "
                "finishing; what they were making will be made again")

    @property
    def inherited_fds(self) -> tuple[int, ...]:
        """What jobs must inherit: nothing where a dead run's jobs can be
        found and stopped, else the lock itself."""
        return () if can_find_processes() or self.fd is None else (self.fd,)

    def job_env(self) -> dict[str, str]:
        """The environment of every process this run starts."""
        return {**os.environ, ENV_NAME: self.run_id}

    def stop_escaped(self) -> int:
        """Stop every process of this run still alive (after an interruption,
        the ones that left their process group too); how many there were."""
        left = run_processes(self.run_id)
        if left:
            stop_processes(left)
        return len(left)

    def running(self) -> tuple[int, float] | None:
        """The pid of the run holding the lock and when it took it, or None
        when no run holds it (without taking it)."""
        try:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            pid = self._holder()[0]
            try:
                return (int(pid), os.stat(self.path).st_mtime) if pid else None
            except (ValueError, OSError):
                return None
        finally:
            os.close(fd)

    def holder_run(self) -> str | None:
        """The id of the run holding the lock now, or None (without taking it)."""
        return self._holder()[1] if self.running() is not None else None

    def wait_until_free(self, poll: float = 0.2) -> None:
        """Return once no run holds the lock (without taking it)."""
        while True:
            try:
                fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            finally:
                os.close(fd)
            time.sleep(poll)

    def release(self) -> None:
        """End cleanly: the record goes first, so the next run finds nothing to stop."""
        if self.fd is not None:
            try:
                os.remove(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def _write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def can_find_processes() -> bool:
    return os.path.isdir("/proc/self") and os.path.exists("/proc/self/environ")


def run_processes(run_id: str) -> list[int]:
    """Live processes whose environment carries this run's id (Linux: /proc)."""
    if not can_find_processes():
        return []
    marker = f"{ENV_NAME}={run_id}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:  # gone already, or not ours to read
            continue
        if marker in env.split(b"\0") and _alive(int(entry)):
            found.append(int(entry))
    return found


def stop_processes(pids: list[int]) -> None:
    """SIGTERM to each (and to the process group each leads), then SIGKILL to
    what is left after a grace period; returns once they are gone."""
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    _signal_all(pids, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _alive(pid: int) -> bool:
    """Running (a zombie has ended: it only waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
