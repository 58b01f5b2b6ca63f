"""``flow cancel``: stop, from another terminal, the run that holds this
directory, as Ctrl-C in its own terminal would: its running jobs are stopped
and their unfinished outputs removed, every job it finished stays recorded.
Then say what was kept, so the next ``flow run`` is no surprise."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from ..decide.state import State
from ..errors import UserError
from ..run.lock import RunLock

WAIT_SECONDS = 60.0
TERM_AFTER_SECONDS = 5.0  # longer than a run takes to stop its jobs after Ctrl-C


def cancel(echo: Callable[[str], None], wait: float = WAIT_SECONDS) -> None:
    """Interrupt the lock holder and wait for it to end; raises if it does not."""
    lock = RunLock(".flow")
    held = lock.running() if os.path.isdir(".flow") else None
    if held is None:
        echo(f"flow: nothing to cancel: no flow run is running in {os.getcwd()}")
        return
    pid, started = held
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        echo(f"flow: nothing to cancel: the flow run (pid {pid}) has just ended")
        return
    except PermissionError:
        raise UserError(f"the flow run here (pid {pid}) belongs to another user: cannot stop it",
                        "Ask its owner, or stop it as that user.") from None
    echo(f"flow: stopping the flow run (pid {pid}) as Ctrl-C would ...")
    began = time.monotonic()
    deadline, termed = began + wait, False
    while lock.running() is not None:
        if not termed and time.monotonic() > began + TERM_AFTER_SECONDS:
            # A run a script started in the background ignores SIGINT (as Ctrl-C in its
            # terminal must not reach it); SIGTERM stops it the same way.
            _signal(pid, signal.SIGTERM)
            termed = True
        if time.monotonic() > deadline:
            raise UserError(f"the flow run (pid {pid}) is still running {wait:.0f} s after being told to stop",
                            f"Stop it with `kill {pid}` (finished jobs are kept either way).")
        time.sleep(0.1)
    echo(_kept(started))


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:  # (it has just ended)
        pass


def _kept(started: float) -> str:
    state = State(".flow", readonly=True)
    try:
        n = state.finished_since(started)
    finally:
        state.close()
    kept = "1 job it finished is recorded" if n == 1 else f"{n} jobs it finished are recorded"
    return f"flow: the run stopped; {kept} and will not run again; `flow run` goes on from there"
