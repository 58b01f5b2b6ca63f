"""What a run tells whoever follows it: the scheduler's events.

The scheduler prints nothing and knows no terminal: it tells one
``RunObserver`` what happens, and an ``Observers`` passes each event on to
any number of them. The terminal reporter (``report.Reporter``) is one; a run
history, a JSON event stream or a progress bar are others, added where a
run is put together (``build``) without touching the scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..decide.rebuild import Reason
    from ..graph.job import Job
    from .summary import Summary


class RunObserver(Protocol):
    live: bool  # wants tick() about twice a second while jobs run (a live line)

    def run_started(self, total: int) -> None:
        """The run begins, with ``total`` jobs in its plan."""

    def planned(self, total: int) -> None:
        """The plan holds ``total`` jobs now (it grows once a checkpoint has run)."""

    def proved(self, count: int) -> None:
        """``count`` jobs of the total are up to date by proof (``decide.stamp``),
        without being decided one by one: no event about each follows."""

    def job_started(self, job: Job, reason: Reason, command: str | None, message: str | None) -> None:
        """``job`` starts because of ``reason``; ``command`` is what it runs as
        ``-p`` shows it, ``message`` its rule's ``message:``."""

    def job_finished(self, job: Job, seconds: float) -> None:
        """``job`` ran and its outputs are recorded, ``seconds`` after it started."""

    def job_failed(self, job: Job, error: str, will_retry: bool) -> None:
        """An attempt of ``job`` failed and it starts again (``will_retry``), or
        it failed for good (or could not start)."""

    def job_skipped(self, job: Job, reason: Reason | None, command: str | None) -> None:
        """``job`` does not run: it is up to date (``reason`` is None) or, in a
        dry run, it would run because of ``reason`` (running ``command``)."""

    def job_undetermined(self, job: Job, checkpoint: Job) -> None:
        """Dry run: what ``job`` reads is known only once ``checkpoint`` has run."""

    def job_reopened(self, job: Job) -> None:
        """``job``, counted as done, runs after all: a temp() output of it is needed again."""

    def note(self, text: str) -> None:
        """A line to show: a warning, a touched job, a job stopped at its time limit."""

    def tick(self) -> None:
        """Time passed while jobs run."""

    def run_ended(self, summary: Summary) -> None:
        """The run is over: finished, failed or interrupted."""


class Observers:
    """Any number of observers as one: each event goes to each, in order."""

    def __init__(self, *observers: RunObserver):
        self.observers = list(observers)

    def add(self, observer: RunObserver) -> None:
        self.observers.append(observer)

    @property
    def live(self) -> bool:
        return any(o.live for o in self.observers)

    def run_started(self, total: int) -> None:
        for o in self.observers:
            o.run_started(total)

    def planned(self, total: int) -> None:
        for o in self.observers:
            o.planned(total)

    def proved(self, count: int) -> None:
        for o in self.observers:
            o.proved(count)

    def job_started(self, job: Job, reason: Reason, command: str | None, message: str | None) -> None:
        for o in self.observers:
            o.job_started(job, reason, command, message)

    def job_finished(self, job: Job, seconds: float) -> None:
        for o in self.observers:
            o.job_finished(job, seconds)

    def job_failed(self, job: Job, error: str, will_retry: bool) -> None:
        for o in self.observers:
            o.job_failed(job, error, will_retry)

    def job_skipped(self, job: Job, reason: Reason | None, command: str | None) -> None:
        for o in self.observers:
            o.job_skipped(job, reason, command)

    def job_undetermined(self, job: Job, checkpoint: Job) -> None:
        for o in self.observers:
            o.job_undetermined(job, checkpoint)

    def job_reopened(self, job: Job) -> None:
        for o in self.observers:
            o.job_reopened(job)

    def note(self, text: str) -> None:
        for o in self.observers:
            o.note(text)

    def tick(self) -> None:
        for o in self.observers:
            o.tick()

    def run_ended(self, summary: Summary) -> None:
        for o in self.observers:
            o.run_ended(summary)
