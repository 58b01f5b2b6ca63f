"""The run history: one row per run in the state store, its console output
kept under ``.flow/logs/``, and both pruned by count and age.

A ``RunRecorder`` is an observer of a run (``events.RunObserver``). Its row
is written when the run starts, with the outcome ``running``, and completed
when it ends, so that a run killed with -9 still shows, as one that never
ended. The attempts of its jobs are written by ``outputs`` with their
outputs, in the same transaction; this module only links them by the run's
id and prunes them with it. ``records`` reads all of it back.

How much is kept: the last ``FLOW_HISTORY_RUNS`` runs (default 100) that
are at most ``FLOW_HISTORY_DAYS`` days old (default 90), with their
attempts and logs, and at most ``FLOW_HISTORY_ATTEMPTS`` attempts in all
(default 1,000,000), the oldest going first.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import TYPE_CHECKING, TextIO

from ..errors import UserError
from .events import RunObserver

if TYPE_CHECKING:
    from ..decide.state import State
    from .summary import Summary

LOGS = "logs"
DEFAULTS = {"FLOW_HISTORY_RUNS": 100, "FLOW_HISTORY_DAYS": 90, "FLOW_HISTORY_ATTEMPTS": 1_000_000}


def limits(environ: dict[str, str] | None = None) -> dict[str, float]:
    """How much history to keep, from the environment; a value that is not a
    positive number (a whole one for runs and attempts) is the user's
    mistake, named with what to write."""
    environ = os.environ if environ is None else environ
    out: dict[str, float] = {}
    for name, default in DEFAULTS.items():
        text = environ.get(name, "").strip()
        if not text:
            out[name] = default
            continue
        whole = name != "FLOW_HISTORY_DAYS"  # (runs and attempts are counted)
        try:
            value = float(int(text)) if whole else float(text)
        except ValueError:
            value = -1.0
        if not value > 0 or value == float("inf"):
            kind = "a whole number of at least 1" if whole else "a positive number"
            raise UserError(f"{name}={text}: not {kind}",
                            f"Set it to how much history to keep (the default is {default}), or unset it.")
        out[name] = value
    return out


def log_name(run_id: str, started: float) -> str:
    """The console log of a run, as Snakemake names its own (a time, sortable)."""
    stamp = time.strftime("%Y-%m-%dT%H%M%S", time.localtime(started))
    return os.path.join(LOGS, f"{stamp}.{run_id[:8]}.log")


class RunRecorder(RunObserver):
    """Records a run in the history."""

    live = False

    def __init__(self, state: State, run_id: str, argv: list[str], targets: tuple[str, ...], cores: int):
        self.state = state
        self.run_id = run_id
        self.started = time.time()
        self.limits = limits()
        self.log = log_name(run_id, self.started)
        self.total = 0
        state.transaction(lambda db: db.execute(
            "INSERT OR REPLACE INTO runs (id, started, command, targets, cores, total, outcome, log) "
            "VALUES (?,?,?,?,?,0,'running',?)",
            (run_id, self.started, json.dumps(argv), json.dumps(list(targets)), cores, self.log)))

    def open_log(self) -> LogFile | None:
        """The file the run's console output is copied to; None if it cannot
        be made (the run goes on: a log is a convenience)."""
        path = os.path.join(self.state.directory, self.log)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return LogFile(open(path, "w", encoding="utf-8", errors="backslashreplace"))  # noqa: SIM115
        except OSError:
            return None

    # events (the others are RunObserver's, which do nothing) ----------------------------

    def run_started(self, total: int) -> None:
        self.total = total

    def planned(self, total: int) -> None:
        self.total = total

    def run_ended(self, summary: Summary) -> None:
        """Complete the run's row, then prune what is past the limits."""
        outcome = ("interrupted" if summary.interrupted is not None
                   else "failed" if summary.failed else "ok")
        ended = time.time()
        self.state.transaction(lambda db: db.execute(
            "UPDATE runs SET ended=?, total=?, ran=?, failed=?, up_to_date=?, outcome=? WHERE id=?",
            (ended, self.total, summary.ran, len(summary.failed), summary.up_to_date, outcome, self.run_id)))
        self.prune(ended)

    def ended_by_error(self) -> None:
        """The run ended by an error of its own (not failed jobs, not a
        signal): its outcome says so, whatever its jobs did."""
        self.state.transaction(lambda db: db.execute(
            "UPDATE runs SET outcome='error', ended=coalesce(ended, ?) WHERE id=?", (time.time(), self.run_id)))

    def prune(self, now: float) -> None:
        """Drop the runs past the limits, their attempts and logs, and the
        oldest attempts past the cap."""
        keep_runs = int(self.limits["FLOW_HISTORY_RUNS"])
        cutoff = now - self.limits["FLOW_HISTORY_DAYS"] * 86400
        cap = int(self.limits["FLOW_HISTORY_ATTEMPTS"])
        dropped: list[tuple[str, str | None]] = []

        def write(db: sqlite3.Connection) -> None:
            dropped.extend(db.execute(
                "SELECT id, log FROM runs WHERE started < ? OR rowid <= "
                "(SELECT rowid FROM runs ORDER BY rowid DESC LIMIT 1 OFFSET ?)", (cutoff, keep_runs)))
            ids = [(run_id,) for run_id, _ in dropped]
            db.executemany("DELETE FROM attempts WHERE run = ?", ids)
            db.executemany("DELETE FROM runs WHERE id = ?", ids)
            db.execute("DELETE FROM attempts WHERE run IS NULL AND ended < ?", (cutoff,))
            db.execute("DELETE FROM attempts WHERE id <= (SELECT max(id) FROM attempts) - ?", (cap,))

        self.state.transaction(write)
        for _, log in dropped:
            if log:
                try:
                    os.remove(os.path.join(self.state.directory, log))
                except OSError:
                    pass  # removed by hand already


class LogFile:
    """A run's log, as the stream of a reporter: a write that fails (a full
    disk) ends the log, never the run."""

    def __init__(self, file: TextIO):
        self.file: TextIO | None = file

    def write(self, text: str) -> int:
        return self._do(lambda f: f.write(text)) or 0

    def flush(self) -> None:
        self._do(lambda f: f.flush())

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        self._do(lambda f: f.close())
        self.file = None

    def _do(self, act):
        if self.file is None:
            return None
        try:
            return act(self.file)
        except (OSError, ValueError):
            file, self.file = self.file, None
            try:
                file.close()
            except OSError:
                pass
            return None
