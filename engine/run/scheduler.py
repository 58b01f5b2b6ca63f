"""The scheduler: which job runs next (the rebuilder says whether it runs).

A topological scheduler that restarts: a job is decided when all its
dependencies are done; up-to-date jobs finish at once, the others wait in a
ready queue ordered by priority, then by the longest path to a target, and
start while threads (``-j``) and ``--resources`` allow. Two events restart
parts of the plan: a job that must run but needs a ``temp()`` file flow
already deleted puts that file's producer back into the plan, and a finished
checkpoint lets the DAG grow (``DAG.expand``). A dry run is the same loop
with nothing started: jobs that would run count as changed for their
dependants.

The bookkeeping of the graph is the ``Plan``; what happens to a job's files
is ``Outputs``; what a job runs is the ``Preparer``'s. The scheduler starts
jobs on an executor, takes their completions, and tells its observers
(``events``) what happens.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field

from flow import FlowError

from ..decide.rebuild import Reason, Rebuilder
from ..errors import Interrupted, JobsFailed, Terminated, UserError
from ..graph.job import Job
from ..graph.job_values import set_threads_and_resources
from .events import RunObserver
from .executor import Completion, Executor, Task
from .outputs import Attempt, Outcome, Outputs, missing_outputs
from .plan import Plan, Ready
from .prepare import Preparer
from .summary import Summary


@dataclass
class Options:
    cores: int = 1
    resources: dict[str, float] = field(default_factory=dict)
    keep_going: bool = False
    dry_run: bool = False
    notemp: bool = False
    touch: bool = False


@dataclass
class Running(Attempt):
    deadline: float | None = None  # time.monotonic() past which it is stopped (runtime=)
    threads: int = 1


class Scheduler:
    def __init__(self, plan: Plan, rebuilder: Rebuilder, preparer: Preparer, outputs: Outputs,
                 executor: Executor | None, events: RunObserver, options: Options):
        self.plan = plan
        self.dag = plan.dag
        self.rebuilder = rebuilder
        self.preparer = preparer
        self.outputs = outputs
        self.executor = executor
        self.events = events
        self.opt = options
        self.running: dict[str, Running] = {}
        self.attempts: dict[str, int] = {}
        self.free_threads = options.cores
        self.free_resources = dict(options.resources)
        self.stopping = False
        self.summary = Summary()

    # the loop ------------------------------------------------------------------------

    def run(self, jobs: list[Job]) -> Summary:
        """Run ``jobs`` (dependencies first: ``DAG.reachable``) as far as they
        are out of date."""
        started = time.monotonic()
        interrupted = None
        try:
            self.plan.add(jobs)
            proved = self.plan.proved[0]
            self.events.run_started(_with_action(self.plan.jobs.values()) + proved)
            if proved:
                self.events.proved(proved)
            self._loop()
            if not self.opt.dry_run:
                self.outputs.settle()
            if self.plan.unexpanded:  # checkpoints that did not run: no new consumer can appear now
                self._delete(self.plan.expanded(None))
        except (KeyboardInterrupt, Terminated) as e:
            interrupted = self.summary.interrupted = e.signum if isinstance(e, Terminated) else 2
            self._stop_running()
        finally:
            self.outputs.close()
            self._summarize(time.monotonic() - started)
            self.events.run_ended(self.summary)
        if interrupted is not None:
            raise Interrupted(interrupted, self.summary.ran)
        if self.plan.failed:
            raise JobsFailed(self.summary)
        return self.summary

    def _summarize(self, seconds: float) -> None:
        plan, s = self.plan, self.summary
        s.seconds = seconds
        s.blocked = len(plan.jobs) - len(plan.done) - len(plan.failed)
        # Up to date: done without running (a dry run's would-run jobs are in
        # `changed`), not counting rules that only gather (`rule all`).
        s.up_to_date = plan.proved[1] + sum(1 for job_id in plan.done - plan.changed
                                            if plan.jobs[job_id].rule.action is not None or plan.jobs[job_id].outputs)

    def _loop(self) -> None:
        while True:
            self._decide_all()
            self._start_ready()
            if not self.running:
                if self.plan.decidable and not self.stopping:
                    continue
                return
            self.outputs.store_due_records()  # (once what is ready has started: none waits for it)
            for c in self.executor.wait(self._wait_timeout()):
                self._complete(c)
            self.events.tick()
            self._enforce_deadlines()

    def _decide_all(self) -> None:
        decidable = self.plan.decidable
        while decidable and not self.stopping:
            job = decidable.popleft()
            try:
                self._decide(job)
            except FlowError as e:  # this job cannot run (a bad placeholder, ...)
                self.outputs.not_started(job, e.render())
                self._refuse(job, e.render(), user_error=True)

    # deciding ------------------------------------------------------------------------

    def _decide(self, job: Job) -> None:
        """All dependencies of ``job`` are done: expand, skip or queue it."""
        plan = self.plan
        if plan.waits(job):
            return  # (a dependency reopened to remake a temp() file: it is decided again then)
        if job.pending is not None and not self._expand(job):
            return
        if job.id in plan.temp_needed:
            reason = Reason("temp", plan.temp_needed[job.id])  # kept until it really runs
            key, parts = self.rebuilder.key(job)
        else:
            reason, key, parts = self.rebuilder.reason(job, keyed=not self.opt.dry_run)  # (a dry run records nothing)
        if self.opt.dry_run and job.rule.action is not None and (reason is None or reason.kind == "input"):
            # Inputs that a job before this one would remake are not known yet.
            upstream = [d for d in job.deps if d.id in plan.changed]
            if upstream:
                reason = Reason("upstream", f"{upstream[0].label} would run first",
                                tuple(f"{d.label} would run first" for d in upstream),
                                tuple(d.label for d in upstream))
        if job.rule.action is None:
            # Nothing to run: a rule that only gathers, or one whose outputs the user
            # provides (they must exist; flow never records, cleans or removes them).
            missing = missing_outputs(job)
            if missing:
                raise UserError(f"rule {job.label} has no action, so its output {missing[0]} must exist already",
                                "Create the file, or give the rule a shell:, run: or script:.")
            reason = None
        if reason is None:
            self.events.job_skipped(job, None, None)
            self._finish(job)
            return
        if self.opt.touch:
            self.outputs.touch(job, key, parts)
            self.events.note(f"touch {job.label}")
            self.events.job_skipped(job, None, None)
            self._finish(job)
            return
        reopened = plan.reopen_producers(job, self.rebuilder.missing_temp_inputs(job))
        if reopened:
            for producer in reopened:
                self.events.job_reopened(producer)
            return
        beyond = self._beyond_limits(job)
        if beyond is not None:
            raise beyond
        plan.temp_needed.pop(job.id, None)
        if self.opt.dry_run:
            prepared = self.preparer.prepared(job)
            self.events.job_skipped(job, reason, prepared.display if prepared else None)
            self.summary.would_run.append((job, reason))
            plan.changed.add(job.id)
            self._finish(job)
            return
        plan.push(job, reason, key, parts)

    def _expand(self, job: Job) -> bool:
        """Grow the DAG behind a finished checkpoint; False if the job must wait."""
        plan = self.plan
        while True:
            if self.opt.dry_run and any(d.id in plan.changed for d in job.deps):
                self.summary.undetermined.append(job)
                self.events.job_undetermined(job, job.deps[0])
                plan.changed.add(job.id)
                self._finish(job)
                return False
            total = len(plan.jobs)
            plan.expand(job)
            if len(plan.jobs) != total:
                self.events.planned(_with_action(plan.jobs.values()))
            if job.pending is None:
                self._delete(plan.expanded(job))
            if plan.remaining[job.id] > 0:
                return False
            if job.pending is None:
                return True
            # (a nested checkpoint, already done: expand again)

    # starting ------------------------------------------------------------------------

    def _start_ready(self) -> None:
        while not self.stopping and self.free_threads > 0:  # (every job needs a thread)
            entry = self.plan.next_ready(self._fits)
            if entry is None:
                return
            self._start(entry)

    def _beyond_limits(self, job: Job) -> UserError | None:
        """Why the job can never start within --resources, if it cannot."""
        for name, limit in self.opt.resources.items():
            if isinstance(job.resources.get(name), str):  # (as Snakemake refuses it)
                return UserError(f"rule {job.label} gives resource {name} the text {job.resources[name]!r}, "
                                 f"but --resources {name}={limit} counts it",
                                 f"Give {name} a number in the rule, or leave it out of --resources.",
                                 pos=job.rule.where("resources"))
            need = _need(job, name)
            if need > limit:
                return UserError(f"rule {job.label} needs {name}={need}, but --resources allows {name}={limit}",
                                 f"Raise --resources {name}=..., or lower the rule's resources:.")
        return None

    def _threads(self, job: Job) -> int:
        """The cores a job takes: its threads, at least one (threads: 0 too), at most -j."""
        return max(1, min(job.threads, self.opt.cores))

    def _fits(self, job: Job) -> bool:
        return self._threads(job) <= self.free_threads and all(
            _need(job, name) <= self.free_resources.get(name, 0) for name in self.opt.resources)

    def _start(self, entry: Ready) -> None:
        job = entry.job
        problem = self.outputs.prepare(job)
        if problem is not None:  # nothing ran, and the old outputs stay: they are not this attempt's
            self.outputs.not_started(job, problem)
            self._refuse(job, problem, user_error=True)
            return
        prepared = self.preparer.prepared(job)
        number = self.attempts[job.id] = self.attempts.get(job.id, 0) + 1
        runtime = job.resources.get("runtime")
        threads = self._threads(job)
        running = Running(job, entry.key, entry.parts, time.time(), entry.reason, number,
                          time.monotonic() + runtime * 60 if runtime else None, threads)
        if self.outputs.restored(running):  # a shared cache had its results: nothing to run
            self.events.note(f"cached {job.label}: its outputs came from the shared cache")
            self.events.job_skipped(job, None, None)
            self.summary.cached += 1
            self.plan.changed.add(job.id)
            self._finish(job)
            return
        self.running[job.id] = running
        self.plan.start(job)
        self.free_threads -= threads
        for name in self.opt.resources:
            self.free_resources[name] -= _need(job, name)
        self.events.job_started(job, entry.reason, prepared.display, self.preparer.message(job))
        ctx = self.preparer.context(job) if prepared.in_worker else None
        self.executor.submit(Task(job.id, prepared.kind, prepared.payload, ctx, prepared.in_worker, threads,
                                  job.resources, job.rule.name in self.preparer.wf.localrules,
                                  (*job.outputs, *job.logs)))

    # ending --------------------------------------------------------------------------

    def _complete(self, c: Completion) -> None:
        r = self.running.get(c.job_id)
        if r is None:
            return
        outcome = self.outputs.ended(r, c)
        if outcome.checking:  # its outputs are being checked: it holds its threads meanwhile
            return
        del self.running[c.job_id]
        self._release(r)
        if not outcome.recorded:
            self._fail(r, outcome)
            return
        self.outputs.share(r.job)  # (once it counts as done: an interruption now costs only the entry)
        self.events.job_finished(r.job, time.time() - r.started)
        self.summary.ran += 1
        self.plan.changed.add(r.job.id)
        self._finish(r.job)

    def _release(self, r: Running) -> None:
        """A job ended: give its threads and resources back, and let producers
        reopened while it ran go ahead."""
        self.free_threads += r.threads
        for name in self.opt.resources:
            self.free_resources[name] += _need(r.job, name)
        self.plan.ended(r.job)

    def _fail(self, r: Running, outcome: Outcome) -> None:
        """A job attempt failed: remove what it wrote, record the attempt, retry or stop."""
        job = r.job
        self.outputs.discard(r, outcome)
        if outcome.retry and r.number <= job.rule.retries and not self.stopping:
            if job.rule.per_job_numbers:
                set_threads_and_resources(job, attempt=r.number + 1)
                beyond = self._beyond_limits(job)
                if beyond is not None:  # the next attempt asks for more than there is
                    self._refuse(job, self.outputs.naming_logs(job, f"{outcome.error}\nnot retried: {beyond}"),
                                 user_error=True)
                    return
            self.events.job_failed(job, outcome.error, will_retry=True)
            self.plan.push(job, r.reason, r.key, r.parts)
            return
        self._refuse(job, self.outputs.naming_logs(job, outcome.error))

    def _refuse(self, job: Job, error: str, user_error: bool = False) -> None:
        """``job`` failed for good: say why; stop starting jobs unless -k."""
        self.events.job_failed(job, error, will_retry=False)
        self.plan.fail(job)
        self.summary.failed.append(job.label)
        self.summary.user_errors += user_error
        if not self.opt.keep_going:
            self.stopping = True

    def _finish(self, job: Job) -> None:
        self._delete(self.plan.finish(job))

    def _delete(self, temps: list[str]) -> None:
        if temps:
            self.outputs.delete_temps(temps, [r.job for r in self.running.values()])

    # time limits and interruption --------------------------------------------------

    def _wait_timeout(self) -> float | None:
        deadlines = [r.deadline for r in self.running.values() if r.deadline is not None]
        if not deadlines:
            timeout = 0.5 if self.events.live else None
        else:
            timeout = max(0.0, min(min(deadlines) - time.monotonic(), 0.5))
        due = self.outputs.records_due_in()  # (records wait for the store a moment at most)
        return min((t for t in (timeout, due) if t is not None), default=None)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for r in list(self.running.values()):
            if r.deadline is not None and now > r.deadline:
                runtime = r.job.resources.get("runtime")
                r.deadline = None
                self.events.note(f"stop  {r.job.label}: it ran longer than runtime={runtime} minutes")
                self.executor.cancel(r.job.id)

    def _stop_running(self) -> None:
        """Interrupted: stop every running job, and remove what they wrote."""
        running = list(self.running.values())
        if self.executor is not None:
            _hurry_on_signals(self.executor)
            self.executor.shutdown()
        for r in running:
            self.outputs.remove(r.job)


def _hurry_on_signals(executor: Executor) -> None:
    """While flow stops its jobs, another Ctrl-C (or SIGTERM) must not cut
    the cleanup short: it makes the jobs be killed at once instead."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: executor.hurry())


def _need(job: Job, name: str) -> float:
    """How much of a --resources limit a job takes: a string resource
    (``disk="ssd"``) is passed to the job, never counted."""
    value = job.resources.get(name, 0)
    return 0 if isinstance(value, str) else value


def _with_action(jobs) -> int:
    """How many jobs a run counts: those with something to run (a rule such
    as ``all`` that only gathers is no step of the progress)."""
    return sum(1 for job in jobs if job.rule.action is not None)
