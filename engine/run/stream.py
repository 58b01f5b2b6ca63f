"""The JSON-lines event stream: a run's events for other tools to follow.

``flow run --log-format json`` writes them to stdout, ``--events FILE``
appends them to FILE: one compact JSON object a line, written and flushed
as it happens, each with ``event``, ``time`` and ``run``. ``EventStream`` is
an observer of the run (``events.RunObserver``) and, around a whole build, a
context manager whose exit writes the last line, ``run_finished``, however
the build ended (failed jobs, Ctrl-C, a Flowfile error before any job was
known). Every event and field is listed in ``docs/events.md``, which
``tests/test_events.py`` reads to check the stream against.

While the events go to stdout, stdout carries them only: what else would
go there (jobs' own stdout, a dry run's plan) goes to stderr until the build
ends, so that ``flow run --log-format json | jq`` reads nothing but JSON.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from typing import TYPE_CHECKING, BinaryIO

from flow import FlowError

from ..errors import (
    FileAccessError,
    InternalError,
    Interrupted,
    JobsFailed,
    OutputClosed,
    Terminated,
    UserError,
)

if TYPE_CHECKING:
    from ..decide.rebuild import Reason
    from ..graph.job import Job
    from .lock import RunLock
    from .summary import Summary

PROGRESS_EVERY = 1.0  # seconds between progress events while jobs run (one follows each job's end too)

_SURROGATE = re.compile("[\ud800-\udfff]")


def event_stream(o) -> EventStream:
    """The stream the options ``o`` (``RunOptions``) ask for with
    ``--log-format json`` and ``--events``, its file open. A file that cannot
    be opened is the user's mistake, said before anything runs."""
    to_stdout = o.log_format == "json" or o.events == "-"
    files = []
    if o.events and o.events != "-":
        try:
            files.append((o.events, open(o.events, "ab", buffering=0)))  # noqa: SIM115 - closed on exit
        except OSError as e:
            raise UserError(f"--events {o.events}: cannot open it to append the run's events ({e.strerror or e})",
                            "Give a file in a directory you can write, or `-` for stdout.") from None
    return EventStream(files, to_stdout=to_stdout, dry_run=o.dry_run)


class EventStream:
    """Writes each event of a run as a JSON line (a ``RunObserver``)."""

    live = True  # ticks while jobs run: the progress events

    def __init__(self, files: list[tuple[str, BinaryIO]], to_stdout: bool = False, dry_run: bool = False):
        self.outs = list(files)  # (name, binary file): each line goes to each
        self.to_stdout = to_stdout
        self.dry_run = dry_run
        self.run = uuid.uuid4().hex  # the lock's id instead when the run holds one (in_run)
        self.started = time.monotonic()
        self.total = self.done = self.ran = self.failed = 0
        self.running: set[str] = set()
        self.summary: Summary | None = None
        self.lost: list[tuple[str, OSError]] = []  # outputs that failed: dropped, said at the end
        self._last_progress = 0.0
        self._stdout: tuple[int, int] | None = None  # (stdout's fd, its saved copy) while stderr stands in

    # the build around it -----------------------------------------------------------

    def __enter__(self) -> EventStream:
        if self.to_stdout:
            self.outs.append(("stdout", self._take_stdout()))
        return self

    def __exit__(self, kind, error, traceback) -> None:
        outcome, said = _ending(error)
        s = self.summary
        self.emit("run_finished", outcome=outcome, error=said,
                  ran=s.ran if s else 0, up_to_date=s.up_to_date if s else 0,
                  failed=list(s.failed) if s else [], blocked=s.blocked if s else 0,
                  would_run=len(s.would_run) if s else 0, seconds=time.monotonic() - self.started)
        self.close()
        if error is None and self.lost:
            name, e = self.lost[0]
            if name == "stdout":
                raise OutputClosed()  # (its reader went away: as `flow list | head`)
            raise FileAccessError(f"--events {name}: the run's events could not all be written ({e.strerror or e})")

    def in_run(self, lock: RunLock | None) -> EventStream:
        """The run's id is the lock's (its jobs' ``FLOW_RUN_ID``) when it holds one."""
        if lock is not None:
            self.run = lock.run_id
        return self

    def close(self) -> None:
        for name, out in self.outs:
            if name == "stdout" and self._stdout is None:
                continue  # (sys.stdout itself: not ours to close)
            try:
                out.close()
            except OSError:
                pass
        self.outs = []
        if self._stdout is not None:
            fd, saved = self._stdout
            sys.stdout.flush()  # (what went to stderr meanwhile stays there)
            os.dup2(saved, fd)
            os.close(saved)
            self._stdout = None

    def _take_stdout(self) -> BinaryIO:
        """Stdout for the events alone: a copy of its descriptor, while stderr
        stands in for it (jobs inherit it); sys.stdout as it is if it is not a
        file (a test's capture)."""
        sys.stdout.flush()
        try:
            fd, err = sys.stdout.fileno(), sys.stderr.fileno()
            saved = os.dup(fd)
        except (AttributeError, ValueError, OSError):
            return sys.stdout.buffer
        try:
            os.dup2(err, fd)
        except OSError:
            os.close(saved)
            return sys.stdout.buffer
        self._stdout = (fd, saved)
        return os.fdopen(os.dup(saved), "wb", buffering=0)

    # writing ---------------------------------------------------------------------------

    def emit(self, event: str, **fields) -> None:
        record = {"event": event, "time": time.time(), "run": self.run, **fields}
        line = (json.dumps(text_safe(record), ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        for name, out in list(self.outs):
            try:
                _write_all(out, line)
            except OSError as e:  # (the run goes on without it; build says so at the end)
                self.outs.remove((name, out))
                self.lost.append((name, e))

    def _job(self, event: str, job: Job, **fields) -> None:
        self.emit(event, job=job.id, label=job.label, rule=job.rule.name, wildcards=dict(job.wildcards),
                  outputs=list(job.outputs), **fields)

    def _progress(self) -> None:
        self._last_progress = time.monotonic()
        self.emit("progress", done=self.done, total=self.total, ran=self.ran, failed=self.failed,
                  running=len(self.running))

    # events (a RunObserver: see events.py) ----------------------------------------

    def run_started(self, total: int) -> None:
        self.total = total
        self.emit("run_started", total=total, dry_run=self.dry_run, directory=os.getcwd())

    def planned(self, total: int) -> None:
        self.total = total
        self.emit("planned", total=total)

    def proved(self, count: int) -> None:
        self.done += count  # (told by the next progress event)

    def job_started(self, job: Job, reason: Reason, command: str | None, message: str | None) -> None:
        self.running.add(job.id)
        self._job("job_started", job, reason=_reason(reason), command=command, message=message)

    def job_finished(self, job: Job, seconds: float) -> None:
        self.running.discard(job.id)
        self.done += 1
        self.ran += 1
        self._job("job_finished", job, seconds=seconds)
        self._progress()

    def job_failed(self, job: Job, error: str, will_retry: bool) -> None:
        self.running.discard(job.id)
        self.failed += not will_retry
        self._job("job_failed", job, error=error, will_retry=will_retry)
        self._progress()

    def job_skipped(self, job: Job, reason: Reason | None, command: str | None) -> None:
        self.done += job.rule.action is not None  # (the total counts only jobs with an action)
        self._job("job_skipped", job, reason=_reason(reason), command=command)

    def job_undetermined(self, job: Job, checkpoint: Job) -> None:
        self.done += job.rule.action is not None
        self._job("job_undetermined", job, checkpoint=checkpoint.id)

    def job_reopened(self, job: Job) -> None:
        self.done -= job.rule.action is not None
        self._job("job_reopened", job)

    def note(self, text: str) -> None:
        self.emit("note", text=text)

    def tick(self) -> None:
        if time.monotonic() - self._last_progress >= PROGRESS_EVERY:
            self._progress()

    def run_ended(self, summary: Summary) -> None:
        self.summary = summary  # (run_finished is written on exit: only the build knows how it ended)


def _reason(reason: Reason | None) -> dict | None:
    if reason is None:
        return None
    return {"kind": reason.kind, "detail": reason.detail, "files": list(reason.files), "paths": list(reason.paths)}


def _ending(error: BaseException | None) -> tuple[str, str | None]:
    """How a build ended, as ``run_finished`` says it: the outcome and what flow said."""
    if error is None:
        return "ok", None
    if isinstance(error, JobsFailed):
        return "failed", error.render()
    if isinstance(error, (Interrupted, KeyboardInterrupt, Terminated)):
        if not isinstance(error, Interrupted):
            error = Interrupted(error.signum if isinstance(error, Terminated) else 2)
        return "interrupted", error.render()
    if not isinstance(error, FlowError):
        error = InternalError.of(error)
    return "error", error.render()


def text_safe(value):
    """``value`` with every string valid Unicode: a name's undecodable bytes
    (kept by Python as lone surrogates) written as ``\\xff``."""
    if isinstance(value, str):
        return _unsurrogate(value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {text_safe(k): text_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [text_safe(v) for v in value]
    return value


def _unsurrogate(text: str) -> str:
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes the name was
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")  # (a surrogate no byte stands for)
    return raw.decode("utf-8", "backslashreplace")


def _write_all(out: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = out.write(view)
        view = view[len(view) if n is None else n:]
    out.flush()
