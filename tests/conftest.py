"""Shared helpers: write a Flowfile into a temporary directory and run the
real ``flow`` command on it in a subprocess."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from flow.engine.decide.state import State

FLOW = [sys.executable, "-m", "flow"]

# Root reads and writes files whatever their mode; to see what a user whose
# permissions are refused sees, run flow without those two capabilities.
_DROP_OVERRIDE = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                  "--bounding-set=-dac_override,-dac_read_search"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Project:
    """A working directory with a Flowfile, and ways to run flow in it."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def flowfile(self, text: str) -> Path:
        return self.write("Flowfile", text)

    def read(self, name: str) -> str:
        return (self.root / name).read_text()

    def exists(self, name: str) -> bool:
        return (self.root / name).exists()

    def flow(self, *args: str, timeout: float = 120, env: dict | None = None,
             obey_permissions: bool = False) -> Result:
        """Run ``flow ARGS`` here; ``obey_permissions`` makes file modes bind even for root."""
        full_env = {**os.environ, **(env or {})}
        prefix = _DROP_OVERRIDE if obey_permissions and os.geteuid() == 0 else []
        proc = subprocess.run(
            [*prefix, *FLOW, *args], cwd=self.root, capture_output=True, text=True,
            timeout=timeout, env=full_env,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def run(self, *args: str, **kw) -> Result:
        """``flow run ARGS``, asserting success."""
        r = self.flow("run", *args, **kw)
        assert r.returncode == 0, r.output
        return r

    def ran(self, *args: str) -> list[str]:
        """The labels of the jobs a ``flow run`` ran (from its per-job lines)."""
        r = self.run(*args)
        return [ln.split("  ", 1)[1].rsplit(" (", 1)[0] for ln in r.stderr.splitlines() if ln.startswith("done  ")]

    def start(self, *args: str) -> subprocess.Popen:
        """``flow ARGS`` in the background, in a session of its own (so that
        its process group can be signalled), its stderr going to ``flow.err``."""
        with open(self.root / "flow.err", "w") as err:
            return subprocess.Popen([*FLOW, *args], cwd=self.root, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)

    def recorded_outputs(self) -> set[str]:
        """The outputs flow records as made by a finished job: in
        ``.flow/state.db``, or in ``.flow/journal`` (records a killed run
        left there for the store to take in), as a dry run reads them."""
        if not (self.root / ".flow/state.db").exists():
            return set()
        state = State(str(self.root / ".flow"), readonly=True)
        try:
            return set(state.outputs)
        finally:
            state.close()

    def integrity(self) -> str:
        """SQLite's own check of ``.flow/state.db``: "ok" when intact."""
        db = sqlite3.connect(self.root / ".flow/state.db")
        try:
            return db.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            db.close()

    def would_run(self, *args: str) -> list[str]:
        r = self.run("-n", *args)
        return [ln[len("would run  "):].split(":", 1)[0] for ln in r.stdout.splitlines() if ln.startswith("would run  ")]


def processes_in(root: Path) -> list[int]:
    """Live (non-zombie) processes whose working directory is ``root``: the
    jobs of a run, which run in sessions of their own and can outlive flow."""
    real = os.path.realpath(root)
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") != real:
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(int(entry))
    return out


def kill_9_everything(root: Path, proc) -> None:
    """SIGKILL flow (``proc``) and every process working in ``root`` (its jobs
    and workers, in sessions of their own), as a crash of the machine would,
    and wait until they are gone."""
    for pid in [proc.pid, *processes_in(root)]:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    wait_for(lambda: not processes_in(root), what="the killed processes to end")


def wait_for(condition, timeout: float = 15, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def on_a_terminal(root: Path, *args: str, env: dict[str, str | None] | None = None, raw: bool = False) -> str:
    """``flow ARGS`` in ``root`` with stdout and stderr on a pseudo-terminal
    (so that it draws its live display), and everything it wrote there;
    ``env`` over the environment (None removes a name); ``raw``: the bytes as
    written, no newline made CR LF."""
    import pty
    import select
    import termios

    master, slave = pty.openpty()
    if raw:
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
    full = {**os.environ, **(env or {})}
    proc = subprocess.Popen([*FLOW, *args], cwd=root, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env={k: v for k, v in full.items() if v is not None})
    os.close(slave)
    written = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            chunk = b""
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every process has closed the terminal
                    break
            if not chunk and proc.poll() is not None:
                break
            written += chunk
    finally:
        proc.wait(timeout=60)
        os.close(master)
    return written.decode(errors="replace")

