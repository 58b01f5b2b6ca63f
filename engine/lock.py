"""One runner per working directory: an OS lock (flock) on ``.flow/lock``.

The kernel releases it when the process dies, however it dies, so there is
never a stale lock to remove by hand."""

from __future__ import annotations

import fcntl
import os
import time

from .errors import LockHeld


class RunLock:
    def __init__(self, directory: str):
        self.path = os.path.join(directory, "lock")
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(
                f"another flow run (pid {holder}), or jobs it started, is running in {os.getcwd()}",
                "Wait for it to finish, or stop it; read-only commands (run -n, list, dag) work meanwhile.",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def wait_until_free(self, poll: float = 0.2) -> None:
        """Return once no run holds the lock (without taking it)."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDONLY)
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
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
