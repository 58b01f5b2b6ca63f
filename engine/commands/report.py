"""What a run prints: one line per job that runs and per finished job, a
progress bar below them on a terminal (``progress``, drawn with rich; its
ETA is ``run.eta``'s), and a summary at the end. Nothing here decides anything.

The line that ends a build, ``flow status``, a failed run or a stopped one
is composed here and nowhere else:
``summary_text`` (a build that ended: ran, nothing to do, would run),
``status_text`` (``flow status``), ``failed_text`` (jobs failed) and
``stopped_text`` (a signal stopped flow); the errors ``JobsFailed`` and
``Interrupted`` render themselves with the last two."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from typing import TYPE_CHECKING, TextIO

from flow import FlowError

from ..errors import JobsFailed

if TYPE_CHECKING:
    from ..decide.rebuild import Reason
    from ..graph.job import Job
    from ..run.eta import Eta
    from ..run.summary import Summary
    from .progress import LiveDisplay

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


def on_a_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that can keep a progress bar (a dumb
    one gets plain lines)."""
    return stream.isatty() and os.environ.get("TERM") != "dumb"


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
        self.live = on_a_terminal(self.out) if live is None else live
        self.total = 0
        self.finished = 0  # done, up to date or ran
        self.ran = 0
        self.failed = 0
        self.running: dict[str, float] = {}
        self.start = time.monotonic()
        self.eta: Eta | None = None  # what is left, fed the run's events (build sets it for a bar)
        self._display: LiveDisplay | None = None
        self._last_draw = 0.0

    @property
    def draws_bar(self) -> bool:
        return self.live and not self.quiet

    # events (a RunObserver: see events.py) ----------------------------------------

    def set_total(self, total: int) -> None:
        self.total = total

    def run_started(self, total: int) -> None:
        self.set_total(total)

    def planned(self, total: int) -> None:
        self.set_total(total)

    def proved(self, count: int) -> None:
        self.finished += count

    def job_started(self, job: Job | str, reason: Reason | str, command: str | None, message: str | None) -> None:
        """(The terminal shows a job by its label: a label will do for ``job``.)"""
        label = _label(job)
        self.running[label] = time.monotonic()
        if self.eta is not None and not isinstance(job, str):
            self.eta.started(job, self.running[label])
        if self.quiet:
            return
        self._print(message or f"run   {one_line(label)}: {reason}")
        if self.printshellcmds and command:
            self._print(f"      {command}")

    def up_to_date(self) -> None:
        """A job needed nothing (or, in a dry run, is planned)."""
        self.finished += 1
        self._draw()

    def job_skipped(self, job: Job, reason: Reason | None, command: str | None) -> None:
        if self.eta is not None and reason is None:
            self.eta.skipped(job)
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
        if self.eta is not None and not isinstance(job, str):
            self.eta.finished(job, seconds)
        if not self.quiet:  # (on a terminal too: the scroll-back keeps each job's time)
            self._print(f"done  {one_line(label)} ({_fmt_seconds(took)}) [{self.finished}/{self.total}]")

    def job_reopened(self, job: Job) -> None:
        """A job counted as done must run after all (a temp() file is needed again)."""
        self.finished -= 1
        if self.eta is not None:
            self.eta.reopened(job)

    def job_failed(self, job: Job | str, error: str, will_retry: bool) -> None:
        label = _label(job)
        self.running.pop(label, None)
        if self.eta is not None and not isinstance(job, str):
            self.eta.failed_attempt(job, will_retry)
        if will_retry:
            first = error.partition("\n")[0] if error else "failed"
            self._print(f"retry {one_line(label)}: {first}", style="yellow")
            return
        self.failed += 1
        lines = failure_lines(error or "failed")
        self._write((f"error {one_line(label)}:", "red"), "\n".join("      " + ln for ln in lines))

    def _would_run(self, job: Job, reason: Reason, command: str | None) -> None:
        if self.quiet:  # (no line of the plan is shown: none is made)
            return
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
        """Time passed: refresh the bar (its running jobs, elapsed time and ETA)."""
        if self.eta is not None:
            self.eta.decided()
        self._draw()

    # output ---------------------------------------------------------------------

    def _print(self, text: str, style: str | None = None) -> None:
        """A line of flow's own, escaped (see ``printable``), in ``style`` on a
        terminal that shows colours."""
        self._write((printable(text), style) if style else printable(text))

    def _write(self, *lines: str | tuple[str, str]) -> None:
        """Lines as given: their parts already escaped, or the job's own,
        written raw; a (text, style) pair is styled on a terminal."""
        if not self.draws_bar:
            for line in lines:
                print(line if isinstance(line, str) else line[0], file=self.out, flush=True)
            return
        self._screen().write(lines)
        self._draw()  # (at most ten times a second: the lines keep the last bar below them)

    def _screen(self) -> LiveDisplay:
        """The bar, set up when first drawn (rich is imported then); the jobs'
        stderr goes through it meanwhile, so that the bar stays below it."""
        if self._display is None:
            from ..run import processes
            from .progress import LiveDisplay

            self._display = LiveDisplay(self.out)
            processes.stderr_sink = self._display.job_output
        return self._display

    def _draw(self) -> None:
        """The bar drawn anew, at most ten times a second."""
        if not self.draws_bar:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1:
            return
        self._last_draw = now
        if not self.running and self.finished == 0:
            return
        from .progress import Status

        oldest = sorted(self.running, key=self.running.__getitem__)
        eta = self.eta.seconds(now) if self.eta is not None else None
        self._screen().draw(Status(self.finished, self.total, self.failed, now - self.start, eta,
                                   [one_line(label) for label in oldest]))

    def _hide(self) -> None:
        """Take the bar away for good (the run is over)."""
        if self._display is not None:
            from ..run import processes

            if processes.stderr_sink == self._display.job_output:
                processes.stderr_sink = None
            self._display.close()
            self._display = None

    def summary(self, text: str) -> None:
        self._hide()
        self.plan_out.flush()
        print(printable(text), file=self.out, flush=True)

    def close(self) -> None:
        self._hide()
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
    cached = f", {summary.cached} restored from the shared cache" if summary.cached else ""
    if summary.ran == 0 and not summary.cached and not touch:
        return f"flow: nothing to do, {jobs_text(summary.up_to_date)} up to date ({seconds:.2f}s)"
    return f"flow: {jobs_text(summary.ran)} ran{cached}, {summary.up_to_date} up to date ({seconds:.2f}s)"


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
