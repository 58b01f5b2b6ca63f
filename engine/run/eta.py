"""How long a run has left, for its progress bar: no I/O, nothing drawn,
and the time of day is the caller's to give (only its own passes are timed).

Which jobs are left. Every job of the plan that has not finished, was not
skipped as up to date, has not failed for good and does not wait on one
that failed. That is fair because the scheduler decides a job the moment
its dependencies are done, and says at once when it skips one: once it has
decided what it can (it starts a job, or time passes: ``decided``), a job
that is not done is queued to run, runs, or waits on a job that runs, so
its inputs are about to change. Such a job may still be spared (flow
compares contents, and a job remade byte for byte changes nothing
downstream); the estimate then falls as it is skipped. While a wave of
decisions is under way (skips arriving), the last estimate stands:
up-to-date jobs never enter it.

What a job takes. Its rule's typical recorded duration (the median of its
last successful attempts, ``Records.typical_seconds``); for a rule never
seen, the mean of what this run has measured for that rule, else of every
job this run has finished; a rule that only gathers (``rule all``) takes
nothing. A running job has its estimate less the time it has run (never
below zero). While any job left has no estimate, neither has the run.

The remaining time is the classic lower bound of list scheduling:
max(the longest path through the jobs left, their total work / the -j
slots), a job taking as many slots as its threads (at least one, at most
all). Each estimate is one pass over the plan's jobs and their
dependencies, made at most once a second, or less often when a pass is
slow (never more than a tenth of the time); between passes the last value
counts down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol


class _Rule(Protocol):
    name: str
    action: object | None


class Step(Protocol):
    """What the estimate needs of a job (``graph.job.Job`` is one)."""

    id: str
    deps: list
    rule: _Rule
    threads: int


BLOCKED = -1.0  # the finish of a job that waits on one that failed: it never runs


def remaining_seconds(jobs: Iterable[Step], done: set[str], failed: set[str], running: Mapping[str, float],
                      estimate: Callable[[Step], float | None], slots: int) -> float | None:
    """The seconds left, given every job of the run, those ``done`` (ran or
    up to date) and ``failed``, the ``running`` ones with the seconds each
    has run, and each job's ``estimate``: the longest path through the jobs
    left, or their work spread over ``slots``, whichever is longer. None if
    a job left has no estimate."""
    left = {job.id: job for job in jobs if job.id not in done}
    finish: dict[str, float] = {}  # a job left: its time plus the longest path before it; or BLOCKED
    longest = work = 0.0
    for root in left.values():
        if root.id in finish:
            continue
        stack: list[tuple[Step, int]] = [(root, 0)]
        while stack:  # depth first, dependencies before their dependants
            job, i = stack[-1]
            deps = job.deps
            while i < len(deps) and (deps[i].id not in left or deps[i].id in finish):
                i += 1
            if i < len(deps):
                stack[-1] = (job, i + 1)
                stack.append((deps[i], 0))
                continue
            stack.pop()
            before = max((finish.get(d.id, 0.0) for d in deps), default=0.0)
            if job.id in failed or any(finish.get(d.id) == BLOCKED for d in deps):
                finish[job.id] = BLOCKED
                continue
            own = _own_seconds(job, estimate, running)
            if own is None:
                return None
            finish[job.id] = own + before
            longest = max(longest, finish[job.id])
            work += own * min(max(job.threads, 1), slots)
    return max(longest, work / slots)


def _own_seconds(job: Step, estimate: Callable[[Step], float | None], running: Mapping[str, float]) -> float | None:
    if job.rule.action is None:
        return 0.0
    seconds = estimate(job)
    if seconds is None:
        return None
    return max(0.0, seconds - running[job.id]) if job.id in running else seconds


class Estimates:
    """What a job is expected to take: its rule's recorded typical duration,
    else what this run measured (see the module's docstring)."""

    def __init__(self, typical: Mapping[str, float] | None = None):
        self.typical = typical or {}
        self.by_rule: dict[str, tuple[float, int]] = {}  # rule -> (seconds in all, jobs)
        self.all = (0.0, 0)

    def measured(self, rule: str, seconds: float) -> None:
        total, n = self.by_rule.get(rule, (0.0, 0))
        self.by_rule[rule] = (total + seconds, n + 1)
        self.all = (self.all[0] + seconds, self.all[1] + 1)

    def __call__(self, job: Step) -> float | None:
        name = job.rule.name
        if name in self.typical:
            return self.typical[name]
        total, n = self.by_rule.get(name) or self.all
        return total / n if n else None


class Eta:
    """The time left in a run, fed its events (the ``Reporter`` passes them
    on) and read as often as it is drawn."""

    def __init__(self, jobs: Callable[[], Iterable[Step]], typical: Callable[[], Mapping[str, float]],
                 slots: int):
        self.jobs = jobs  # every job of the plan (it grows behind a checkpoint)
        self.typical = typical  # the history, read at the first estimate
        self.slots = max(1, slots)
        self.estimates = Estimates()  # (the history joins it at the first estimate)
        self.read_history = False
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.started_at: dict[str, float] = {}
        self.settled = False  # the scheduler has decided what it can: what is not done runs
        self.value: float | None = None
        self.at: float | None = None  # when ``value`` was worked out
        self.cost = 0.0  # how long that took

    # events ---------------------------------------------------------------------------

    def started(self, job: Step, now: float) -> None:
        self.started_at[job.id] = now
        self.settled = True

    def finished(self, job: Step, seconds: float) -> None:
        self.started_at.pop(job.id, None)
        self.done.add(job.id)
        self.estimates.measured(job.rule.name, seconds)

    def failed_attempt(self, job: Step, will_retry: bool) -> None:
        self.started_at.pop(job.id, None)
        if not will_retry:
            self.failed.add(job.id)

    def skipped(self, job: Step) -> None:
        """Up to date: it never enters the estimate."""
        self.done.add(job.id)
        self.settled = False

    def reopened(self, job: Step) -> None:
        self.done.discard(job.id)

    def decided(self) -> None:
        """Time passed with no decision under way."""
        self.settled = True

    # the estimate ---------------------------------------------------------------------

    def seconds(self, now: float) -> float | None:
        """The seconds left at ``now`` (monotonic, as given to ``started``),
        or None while nothing is known."""
        due = self.at is None or now - self.at >= max(1.0, 10 * self.cost)
        if due and self.settled:
            self._work_out(now)
        if self.value is None or self.at is None:
            return None
        return max(0.0, self.value - (now - self.at))

    def _work_out(self, now: float) -> None:
        began = time.perf_counter()
        if not self.read_history:
            self.estimates.typical = self.typical()
            self.read_history = True
        running = {job_id: now - at for job_id, at in self.started_at.items()}
        self.value = remaining_seconds(self.jobs(), self.done, self.failed, running, self.estimates, self.slots)
        self.at = now
        self.cost = time.perf_counter() - began
