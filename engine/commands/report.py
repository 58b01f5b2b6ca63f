"""What a run prints: a live progress line on a terminal, otherwise one line
per finished job, and a summary at the end. Nothing here decides anything.

The line that ends a build, ``flow status``, a failed run or a stopped one
is composed here and nowhere else:
``summary_text`` (a build that ended: ran, nothing to do, would run),
``status_text`` (``flow status``), ``failed_text`` (jobs failed) and
``stopped_text`` (a signal stopped flow); the errors ``JobsFailed`` and
``Interrupted`` render themselves with the last two."""

from __future__ import annotations

import re
import shutil
import signal
import sys
import time
from typing import TYPE_CHECKING, TextIO

from flow import FlowError

from ..errors import JobsFailed

if TYPE_CHECKING:
    from ..decide.rebuild import Reason
    from ..graph.job import Job
    from ..run.scheduler import Summary

# What a terminal acts on rather than shows: C0 controls but newline and tab,
# DEL, C1 controls, the bidi marks, embeddings, overrides and isolates, the
# Unicode line and paragraph separators, and lone surrogates (a file name's
# undecodable bytes, which a POSIX-locale stream would write back raw).
_UNSAFE = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_IN_TEXT = re.compile(f"[{_UNSAFE}]")
_UNSAFE_IN_A_NAME = re.compile(f"[\\t\\n{_UNSAFE}]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match) -> str:
    c = match.group()
    return _SHORT.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable(text: str) -> str:
    """``text`` safe to write to a terminal: every character it would act on
    (ESC, BEL, CR, backspace, DEL, C1, bidi overrides) shown escaped as
    ``\\x1b``, ``\\r``, ``\\u202e``, so that a file name in a message cannot
    clear the screen, forge a line or reverse the text. Newline and tab stay:
    they are flow's own line breaks and indents. Backslashes are left as they
    are, so that paths and Flowfile excerpts read as written."""
    return _UNSAFE_IN_TEXT.sub(_escape, text) if _UNSAFE_IN_TEXT.search(text) else text


def one_line(text: str) -> str:
    """A name or value inside a line (a job label, a path): as ``printable``,
    and a newline or tab in it is shown as ``\\n`` or ``\\t``, for it is
    part of the name, not a line break of flow's."""
    return _UNSAFE_IN_A_NAME.sub(_escape, text) if _UNSAFE_IN_A_NAME.search(text) else text


# A failed job's message ends with what the job itself wrote (the scheduler's
# "its stderr ended with:" or "LOG ends with:", then lines indented by two).
_JOBS_OWN_WORDS = re.compile(r"its stderr ended with:|.* ends with:")


def failure_lines(error: str) -> list[str]:
    """The lines of a failed job's message: flow's escaped, and the job's own
    last words as the job wrote them (they are its output, like its stderr
    passed through while it ran, colours included)."""
    out: list[str] = []
    in_jobs_words = False
    for line in error.split("\n"):
        if in_jobs_words and line.startswith("  "):
            out.extend(line.splitlines() or [""])
            continue
        in_jobs_words = _JOBS_OWN_WORDS.fullmatch(line) is not None
        out.append(printable(line))
    return out


def _fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_schema(schema: dict[str, str]) -> str:
    """A rule's ``schema:`` on one line, as ``flow list`` and ``flow run -n`` show it."""
    return "{" + ", ".join(f"{column}: {type_name}" for column, type_name in schema.items()) + "}"


def _label(job: Job | str) -> str:
    return job if isinstance(job, str) else job.label


class Reporter:
    """The terminal observer of a run (``events.RunObserver``)."""

    def __init__(self, quiet: bool = False, printshellcmds: bool = False,
                 stream: TextIO | None = None, live: bool | None = None, explain: bool = False,
                 plan_stream: TextIO | None = None):
        self.out = stream or sys.stderr
        self.plan_out = plan_stream or sys.stdout
        self.quiet = quiet
        self.printshellcmds = printshellcmds
        self.explain = explain  # a dry run lists every file behind each reason
        self.live = self.out.isatty() if live is None else live
        self.total = 0
        self.finished = 0  # done, up to date or ran
        self.ran = 0
        self.failed = 0
        self.running: dict[str, float] = {}
        self.start = time.monotonic()
        self._line_shown = False
        self._last_draw = 0.0
        self._durations: list[float] = []
        self._first_start: float | None = None  # when the first job started (the ETA's pace runs from there)

    # events (a RunObserver: see events.py) ----------------------------------------

    def set_total(self, total: int) -> None:
        self.total = total

    def run_started(self, total: int) -> None:
        self.set_total(total)

    def planned(self, total: int) -> None:
        self.set_total(total)

    def job_started(self, job: Job | str, reason: Reason | str, command: str | None, message: str | None) -> None:
        """(The terminal shows a job by its label: a label will do for ``job``.)"""
        label = _label(job)
        self.running[label] = time.monotonic()
        if self._first_start is None:
            self._first_start = self.running[label]
        if self.quiet:
            return
        self._print(message or f"run   {one_line(label)}: {reason}")
        if self.printshellcmds and command:
            self._print(f"      {command}")
        self._draw()

    def up_to_date(self) -> None:
        """A job needed nothing (or, in a dry run, is planned)."""
        self.finished += 1
        self._draw()

    def job_skipped(self, job: Job, reason: Reason | None, command: str | None) -> None:
        if reason is not None:
            self._would_run(job, reason, command)
        if job.rule.action is not None:  # (the total counts only jobs with an action)
            self.up_to_date()

    def job_undetermined(self, job: Job, checkpoint: Job) -> None:
        self.plan(f"later      {job.label}: its inputs are known once checkpoint {checkpoint.label} has run")
        if job.rule.action is not None:
            self.up_to_date()

    def job_finished(self, job: Job | str, seconds: float) -> None:
        label = _label(job)
        self.finished += 1
        self.ran += 1
        started = self.running.pop(label, None)
        took = time.monotonic() - started if started is not None else 0.0
        self._durations.append(took)
        if not self.quiet and not self.live:
            self._print(f"done  {one_line(label)} ({_fmt_seconds(took)}) [{self.finished}/{self.total}]")
        self._draw()

    def job_reopened(self, job: Job) -> None:
        """A job counted as done must run after all (a temp() file is needed again)."""
        self.finished -= 1

    def job_failed(self, job: Job | str, error: str, will_retry: bool) -> None:
        label = _label(job)
        self.running.pop(label, None)
        if will_retry:
            first = error.partition("\n")[0] if error else "failed"
            self._print(f"retry {one_line(label)}: {first}")
            return
        self.failed += 1
        lines = failure_lines(error or "failed")
        self._write(f"error {one_line(label)}:\n" + "\n".join("      " + ln for ln in lines))
        self._draw()

    def _would_run(self, job: Job, reason: Reason, command: str | None) -> None:
        self.plan(f"would run  {one_line(job.label)}: {reason}")
        if self.explain:
            for line in reason.files:
                self.plan(f"           - {line}")
        if self.printshellcmds and command:
            self.plan(f"           {command}")
        if job.rule.schema:
            self.plan(f"           schema {format_schema(job.rule.schema)}")

    def run_ended(self, summary: Summary) -> None:
        self.close()

    def plan(self, text: str) -> None:
        """A line of a dry run's plan: to stdout, so that it can be piped or saved."""
        if not self.quiet:
            print(printable(text), file=self.plan_out, flush=False)

    def note(self, text: str) -> None:
        self._print(text)

    def tick(self) -> None:
        """Time passed: refresh the live line (its running jobs and ETA)."""
        self._draw()

    # output ---------------------------------------------------------------------

    def _print(self, text: str) -> None:
        """A line of flow's own, escaped (see ``printable``)."""
        self._write(printable(text))

    def _write(self, text: str) -> None:
        """A line as given: its parts already escaped, or the job's own."""
        self._clear()
        print(text, file=self.out, flush=True)
        self._draw(force=True)

    def _clear(self) -> None:
        if self._line_shown:
            self.out.write("\r\x1b[2K")
            self._line_shown = False

    def _draw(self, force: bool = False) -> None:
        if not self.live or self.quiet:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        if not self.running and self.finished == 0:
            return
        parts = [f"[{self.finished}/{self.total}]", f"{self.ran} ran"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        eta = self._eta()
        if eta is not None:
            parts.append(f"ETA {_fmt_seconds(eta)}")
        if self.running:
            oldest = sorted(self.running, key=self.running.__getitem__)
            shown = [one_line(label) for label in oldest[:3]]
            parts.append(f"running {len(oldest)}: " + ", ".join(shown) + (", ..." if len(oldest) > 3 else ""))
        width = shutil.get_terminal_size().columns - 1
        self.out.write("\r\x1b[2K" + "  ".join(parts)[:width])
        self.out.flush()
        self._line_shown = True

    def _eta(self) -> float | None:
        """The jobs left at the pace of the jobs that ran: up-to-date jobs
        take no time and would make the pace look faster than it is."""
        if self._first_start is None or self.ran < 2:
            return None
        elapsed = time.monotonic() - self._first_start
        if elapsed < 1:
            return None
        return max(0.0, (self.total - self.finished) * elapsed / self.ran)

    def summary(self, text: str) -> None:
        self._clear()
        self.plan_out.flush()
        print(printable(text), file=self.out, flush=True)

    def close(self) -> None:
        self._clear()
        self.out.flush()
        self.plan_out.flush()


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 file``, ``2 files``; ``nouns`` for a plural that is not noun + s
    (``counted(n, "directory", "directories")``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {nouns or noun + 's'}"


def jobs_text(n: int) -> str:
    return counted(n, "job")


# the end of a run ----------------------------------------------------------------


def summary_text(summary: Summary, seconds: float, dry_run: bool = False, touch: bool = False) -> str:
    """The last line of a build that ended (``seconds`` after it started):
    what would run, that nothing had to, or what ran."""
    if dry_run:
        later = (f", more after checkpoints ({jobs_text(len(summary.undetermined))} wait for them)"
                 if summary.undetermined else "")
        return f"flow: would run {jobs_text(len(summary.would_run))}, {summary.up_to_date} up to date{later}"
    if summary.ran == 0 and not touch:
        return f"flow: nothing to do, {jobs_text(summary.up_to_date)} up to date ({seconds:.2f}s)"
    return f"flow: {jobs_text(summary.ran)} ran, {summary.up_to_date} up to date ({seconds:.2f}s)"


def status_text(summary: Summary) -> str:
    """The last line of ``flow status``: how many jobs are out of date."""
    later = f", {jobs_text(len(summary.undetermined))} wait for checkpoints" if summary.undetermined else ""
    if summary.would_run:
        return f"flow: {jobs_text(len(summary.would_run))} out of date, {summary.up_to_date} up to date{later}"
    return f"flow: everything is up to date ({jobs_text(summary.up_to_date)}){later}"


def failed_text(summary: Summary, watching: bool = False) -> str:
    """The last line of a run in which jobs failed (``JobsFailed``): which,
    how many ran, and what to do (under ``flow watch``, the next step is a
    save, not another command)."""
    s = summary
    more = f" and {len(s.failed) - 5} more" if len(s.failed) > 5 else ""
    names = ", ".join(one_line(label) for label in s.failed[:5]) + more
    blocked = f"; {s.blocked} not started" if s.blocked else ""
    what = "could not start" if s.user_errors == len(s.failed) else "failed"
    then = ("Fix the problem and save: flow watch builds again" if watching
            else "Fix the problem and `flow run` again")
    return (f"flow: {jobs_text(len(s.failed))} {what} ({names}); {s.ran} ran{blocked}. "
            f"{then}: finished jobs are kept.")


def stopped_text(signum: int, finished: int | None = None) -> str:
    """The last line when a signal stopped flow (``Interrupted``): with
    ``finished``, a run was under way and its finished jobs are kept."""
    name = signal.Signals(signum).name
    if finished is not None:
        return (f"flow: stopped by {name}; {jobs_text(finished)} finished "
                "and are kept. `flow run` resumes from there.")
    return "flow: interrupted" if signum == signal.SIGINT else f"flow: stopped by {name}"


def describe_error(e: FlowError, watching: bool = False) -> str:
    """What to say of an error that ended a command or a build (under ``flow
    watch``, failed jobs are fixed by a save)."""
    return e.render(watching=watching) if isinstance(e, JobsFailed) else e.render()
