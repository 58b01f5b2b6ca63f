"""The plan: the jobs a run intends to build and how far each has come (as
ninja's ``Plan``: "what we intend to build, which steps are ready").

Each job waits for its dependencies (``remaining``); once none is left it is
handed to the scheduler to decide (``decidable``), and one that must run waits
in the ready heap until threads and resources allow it to start. The plan
grows when a checkpoint has run (``expand``), and reopens a done producer
whose temp() output was deleted but is needed again (``reopen_producers``);
it says when temp() outputs can go (``finish``). It runs nothing, touches
no file and reports nothing.

A plan may hold only the jobs a change can reach (``decide.stamp``): the
others are up to date by proof and only counted (``proved``); a dependency
outside such a plan is done.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..decide.rebuild import Reason
from ..graph.dag import DAG
from ..graph.job import Job


@dataclass(order=True, slots=True)
class Ready:
    """A job that may start once threads and resources allow: the one of highest
    priority first, then the one farthest from a target, then the oldest."""

    priority: int  # the rule's, negated
    depth: int  # the longest path to a target, negated
    seq: int
    job: Job = field(compare=False)
    reason: Reason = field(compare=False)
    key: str = field(compare=False)
    parts: dict = field(compare=False)


class Plan:
    def __init__(self, dag: DAG, targets: set[str] | None = None, dry_run: bool = False,
                 release_temps: bool = True, proved: tuple[int, int] = (0, 0)):
        self.dag = dag
        # The jobs left out, up to date by proof: how many have an action (a
        # step of the progress), how many count as up to date (``Summary``).
        self.proved = proved
        self.targets = targets or set()  # kept even when they are temp()
        self.dry_run = dry_run  # jobs that would run count as changed, and nothing is deleted
        self.releases = release_temps and not dry_run and any(r.makes_temp for r in dag.wf.rules.values())
        self.jobs: dict[str, Job] = {}
        self.consumers: dict[str, list[Job]] = {}
        self.producers: dict[str, dict[str, Job]] = {}  # the reverse of consumers
        # What a job still waits for: its dependencies not done yet, and, for a
        # producer reopened to remake a temp() file, its consumers still running.
        self.remaining: dict[str, int] = {}
        self.depth: dict[str, int] = {}
        self.decidable: deque[Job] = deque()  # nothing left to wait for: to be decided
        self.ready: list[Ready] = []
        self.running: set[str] = set()
        self.done: set[str] = set()
        self.changed: set[str] = set()  # ran (or, in a dry run, would run)
        self.failed: set[str] = set()
        self.temp_needed: dict[str, str] = {}  # producer id -> why it runs again
        self.after: dict[str, list[Job]] = {}  # running job id -> reopened producers waiting for it
        self.released: set[str] = set()  # producers whose temp() outputs were deleted
        self.unexpanded: set[str] = set()  # jobs whose inputs wait for a checkpoint
        self.deferred: dict[str, Job] = {}  # temp() producers to release once none is left
        self.seq = 0

    # growing -------------------------------------------------------------------------

    def add(self, jobs: list[Job]) -> None:
        """Register jobs (dependencies first) and compute their depth."""
        new = [j for j in jobs if j.id not in self.jobs]
        for job in new:
            self.jobs[job.id] = job
            self.consumers.setdefault(job.id, [])
            if job.pending is not None:
                self.unexpanded.add(job.id)
        done, jobs = self.done, self.jobs
        for job in new:
            for dep in job.deps:
                self.link(dep, job)
            # (deps are unique; before any job is done, as when a run starts, all count)
            if self.proved[0] or self.proved[1]:
                self.remaining[job.id] = sum(1 for d in job.deps if d.id in jobs and d.id not in done)
            else:
                self.remaining[job.id] = sum(1 for d in job.deps if d.id not in done) if done else len(job.deps)
        for job in reversed(new):
            d = self.depth.get(job.id, 0)
            for dep in job.deps:
                if self.depth.get(dep.id, -1) < d + 1:
                    self.depth[dep.id] = d + 1
        for job in new:
            if self.remaining[job.id] == 0:
                self.decidable.append(job)

    def link(self, producer: Job, consumer: Job) -> None:
        if consumer not in self.consumers.setdefault(producer.id, []):
            self.consumers[producer.id].append(consumer)
        self.producers.setdefault(consumer.id, {})[producer.id] = producer

    def expand(self, job: Job) -> None:
        """Grow the DAG behind a finished checkpoint: ``job``'s inputs are
        evaluated again, and the jobs they need join the plan."""
        self.add(self.dag.expand(job))
        self.remaining[job.id] = sum(1 for d in job.deps if d.id not in self.done)
        for dep in job.deps:
            self.link(dep, job)

    def expanded(self, job: Job | None) -> list[str]:
        """``job``'s inputs are known now (None: no checkpoint is left to run);
        the temp() files whose release waited for that, once no job waits."""
        if job is None:
            self.unexpanded.clear()
        else:
            self.unexpanded.discard(job.id)
        if self.unexpanded or not self.deferred or not self.releases:
            return []
        deferred, self.deferred = list(self.deferred.values()), {}
        return [path for p in deferred for path in self._release(p)]

    def reopen_producers(self, job: Job, missing: list[str]) -> list[Job]:
        """``job`` must run but needs the temp() files ``missing``, which flow
        deleted: their producers run again. A reopened producer is no longer
        done, so every consumer of it that is not done waits for it again, and
        it waits for its own dependencies that are not done (some may be
        reopened too). Returns the producers reopened."""
        producers = {}
        for path in missing:
            producer = self.dag.producer.get(path)
            if producer is not None and producer.id in self.done and producer.id not in self.changed:
                producers.setdefault(producer.id, (producer, path))  # done, and not remade yet
        for producer, path in producers.values():
            self.done.discard(producer.id)
            self.released.discard(producer.id)
            self.remaining[producer.id] = sum(
                1 for p in self.producers.get(producer.id, {}).values() if p.id not in self.done)
            for consumer in self.consumers.get(producer.id, ()):
                if consumer.id in self.running:  # it reads the producer's other outputs: let it end
                    self.remaining[producer.id] += 1
                    self.after.setdefault(consumer.id, []).append(producer)
                if consumer.id not in self.done:  # (a retry of a running one waits too)
                    self.remaining[consumer.id] = self.remaining.get(consumer.id, 0) + 1
            if job not in self.consumers.get(producer.id, ()):
                self.link(producer, job)
                self.remaining[job.id] = self.remaining.get(job.id, 0) + 1
            self.temp_needed[producer.id] = f"{path} (temp) is needed again by {job.label}"
            self.decidable.append(producer)
        return [producer for producer, _ in producers.values()]

    # the states of a job -----------------------------------------------------------

    def waits(self, job: Job) -> bool:
        """Whether ``job`` is not to be decided now: it is done, running or
        failed, or it waits for a dependency (a reopened one: it comes back then)."""
        return job.id in self.done or job.id in self.running or job.id in self.failed \
            or self.remaining.get(job.id, 0) > 0

    def push(self, job: Job, reason: Reason, key: str, parts: dict) -> None:
        """``job`` must run: it starts when threads and resources allow."""
        self.seq += 1
        heapq.heappush(self.ready, Ready(-job.rule.priority, -self.depth.get(job.id, 0), self.seq,
                                         job, reason, key, parts))

    def next_ready(self, fits: Callable[[Job], bool]) -> Ready | None:
        """The first ready job that ``fits`` in the threads and resources free
        (taken off the heap), or None. While jobs run, a few dozen that do not
        fit are passed over at most: nothing smaller is likely further down."""
        skipped: list[Ready] = []
        found = None
        ready = self.ready
        while ready:
            entry = heapq.heappop(ready)
            if self.waits(entry.job):
                continue  # waits for a reopened dependency (decided again when it is done), or stale
            if fits(entry.job):
                found = entry
                break
            skipped.append(entry)
            if self.running and len(skipped) > 64:
                break
        for entry in skipped:
            heapq.heappush(ready, entry)
        return found

    def start(self, job: Job) -> None:
        self.running.add(job.id)

    def ended(self, job: Job) -> None:
        """A started job ended (done or not): producers reopened while it ran may go ahead."""
        self.running.discard(job.id)
        for producer in self.after.pop(job.id, ()):
            self.remaining[producer.id] -= 1
            if self.remaining[producer.id] == 0:
                self.decidable.append(producer)

    def fail(self, job: Job) -> None:
        self.failed.add(job.id)

    def finish(self, job: Job) -> list[str]:
        """``job`` is done (ran, up to date, or planned in a dry run): its
        consumers wait for one job less. Returns the temp() files that
        nothing in this run can need any more, to delete."""
        self.done.add(job.id)
        if job.rule.checkpoint and not (self.dry_run and job.id in self.changed):
            self.dag.checkpoint_done(job)
        for consumer in self.consumers.get(job.id, ()):
            if consumer.id in self.done or consumer.id in self.failed:
                continue
            n = self.remaining.get(consumer.id, 0) - 1
            self.remaining[consumer.id] = n
            if n == 0:
                self.decidable.append(consumer)
        return self._release(job) if self.releases else []

    def _release(self, job: Job) -> list[str]:
        """The temp() outputs that nothing in this run can need again.

        A producer's temp files go once every consumer is done and *settled*:
        makes no temp file itself, or has released its own. (A done consumer
        whose temp output is still needed downstream may be remade, and then
        needs these files back.) Releasing one producer may settle the ones
        before it, up a chain of temp files. While a checkpoint's dependants
        are not expanded, new consumers may still appear, so releases wait."""
        paths: list[str] = []
        stack = [job, *self.producers.get(job.id, {}).values()]
        while stack:
            p = stack.pop()
            if p.id in self.released or p.id not in self.done or not p.rule.makes_temp:
                continue
            if self.unexpanded:
                self.deferred[p.id] = p
                continue
            if not all(c.id in self.done and (c.id in self.released or not c.rule.makes_temp)
                       for c in self.consumers.get(p.id, ())):
                continue
            self.released.add(p.id)
            paths.extend(out for i, out in enumerate(p.outputs)
                         if "temp" in p.output_flags(i) and out not in self.targets)
            stack.extend(self.producers.get(p.id, {}).values())
        return paths
