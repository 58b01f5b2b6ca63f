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
"""

from __future__ import annotations

import heapq
import os
import signal
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from flow.grammar import FlowfileError
from flow.rules import contracts

from .dag import DAG, Job
from .errors import Interrupted, JobsFailed, Terminated, UserError
from .events import RunObserver
from .executor import Completion, Executor, Task
from .files import make_readonly, remove_empty_parents, remove_output
from .prepare import Preparer
from .rebuild import Reason, Rebuilder
from .state import State


@dataclass
class Options:
    cores: int = 1
    resources: dict[str, float] = field(default_factory=dict)
    keep_going: bool = False
    dry_run: bool = False
    notemp: bool = False
    touch: bool = False


@dataclass
class _Running:
    job: Job
    reason: Reason
    key: str
    parts: dict
    started: float
    deadline: float | None
    attempt: int
    threads: int
    ended: tuple[float, Completion] | None = None  # the job ended; its outputs' contract is being checked


@dataclass
class Summary:
    ran: int = 0
    up_to_date: int = 0
    failed: list[str] = field(default_factory=list)
    blocked: int = 0
    user_errors: int = 0  # failures that are mistakes in the Flowfile (exit 2)
    would_run: list[tuple[Job, Reason]] = field(default_factory=list)
    undetermined: list[Job] = field(default_factory=list)
    seconds: float = 0.0


class Scheduler:
    def __init__(self, dag: DAG, rebuilder: Rebuilder, preparer: Preparer, executor: Executor | None,
                 state: State, events: RunObserver, options: Options):
        self.dag = dag
        self.rebuilder = rebuilder
        self.preparer = preparer
        self.executor = executor
        self.state = state
        self.events = events
        self.opt = options
        self.jobs: dict[str, Job] = {}
        self.consumers: dict[str, list[Job]] = {}
        # What a job still waits for: its dependencies not done yet, and, for a
        # producer reopened to remake a temp() file, its consumers still running.
        self.remaining: dict[str, int] = {}
        self.depth: dict[str, int] = {}
        self.done: set[str] = set()
        self.changed: set[str] = set()  # ran (or, in a dry run, would run)
        self.failed: set[str] = set()
        self.ready: list[tuple] = []
        self.queue: deque[Job] = deque()
        self.running: dict[str, _Running] = {}
        self.attempts: dict[str, int] = {}
        self.temp_needed: dict[str, str] = {}  # producer id -> why it runs again
        self.after: dict[str, list[Job]] = {}  # running job id -> reopened producers waiting for it
        self.producers: dict[str, dict[str, Job]] = {}  # the reverse of consumers
        self.released: set[str] = set()  # producers whose temp() outputs were deleted
        self.unexpanded: set[str] = set()  # jobs whose inputs wait for a checkpoint
        self.deferred: dict[str, Job] = {}  # temp() producers to release once none is left
        self.free_threads = options.cores
        self.free_resources = dict(options.resources)
        self.stopping = False
        self.temps = any(rule.makes_temp for rule in dag.wf.rules.values())
        self.summary = Summary()
        self.seq = 0

    # setup -----------------------------------------------------------------------

    def _add(self, jobs: list[Job]) -> None:
        """Register jobs (dependencies first) and compute their depth."""
        new = [j for j in jobs if j.id not in self.jobs]
        for job in new:
            self.jobs[job.id] = job
            self.consumers.setdefault(job.id, [])
            if job.pending is not None:
                self.unexpanded.add(job.id)
        for job in new:
            for dep in job.deps:
                self._link(dep, job)
            self.remaining[job.id] = sum(1 for d in job.deps if d.id not in self.done)
        for job in reversed(new):
            d = self.depth.get(job.id, 0)
            for dep in job.deps:
                if self.depth.get(dep.id, -1) < d + 1:
                    self.depth[dep.id] = d + 1
        for job in new:
            if self.remaining[job.id] == 0:
                self.queue.append(job)

    # the loop ------------------------------------------------------------------------

    def run(self, targets: list[Job]) -> Summary:
        started = time.monotonic()
        interrupted = None
        try:
            self._add(self.dag.reachable(targets))
            self.events.run_started(len(self.jobs))
            self._loop()
            if not self.opt.dry_run:
                self.rebuilder.hasher.settle()
            if self.unexpanded:  # checkpoints that did not run: no new consumer can appear now
                self.unexpanded.clear()
                self._expanded(None)
        except (KeyboardInterrupt, Terminated) as e:
            interrupted = e.signum if isinstance(e, Terminated) else 2
            self._stop_running()
        finally:
            self.state.save_stats(self.rebuilder.hasher.take_learned())
            self._summarize(time.monotonic() - started)
            self.events.run_ended(self.summary)
        if interrupted is not None:
            raise Interrupted(interrupted, self.summary.ran)
        if self.failed:
            raise JobsFailed(self.summary)
        return self.summary

    def _summarize(self, seconds: float) -> None:
        self.summary.seconds = seconds
        self.summary.blocked = len(self.jobs) - len(self.done) - len(self.failed)
        # Up to date: done without running (a dry run's would-run jobs are in
        # `changed`), not counting rules that only gather (`rule all`).
        self.summary.up_to_date = sum(
            1 for job_id in self.done - self.changed
            if self.jobs[job_id].rule.action is not None or self.jobs[job_id].outputs)

    def _loop(self) -> None:
        while True:
            self._drain_queue()
            self._start_ready()
            if not self.running:
                if self.queue and not self.stopping:
                    continue
                return
            completions = self.executor.wait(self._wait_timeout())
            for c in completions:
                self._complete(c)
            self.events.tick()
            self._enforce_deadlines()

    def _drain_queue(self) -> None:
        while self.queue and not self.stopping:
            job = self.queue.popleft()
            try:
                self._decide(job)
            except (UserError, FlowfileError) as e:  # this job cannot run (a bad placeholder, ...)
                self._refuse(job, e.render(), user_error=True)

    def _decide(self, job: Job) -> None:
        """All dependencies of ``job`` are done: expand, skip or queue it."""
        if job.id in self.done or job.id in self.running or job.id in self.failed \
                or self.remaining.get(job.id, 0) > 0:
            return  # (a dependency reopened to remake a temp() file: it is queued again then)
        if job.pending is not None:
            if not self._expand(job):
                return
        if job.id in self.temp_needed:
            reason = Reason("temp", self.temp_needed[job.id])  # kept until it really runs
            key, parts = self.rebuilder.key(job)
        else:
            reason, key, parts = self.rebuilder.reason(job)
        if self.opt.dry_run and job.rule.action is not None and (reason is None or reason.kind == "input"):
            # Inputs that a job before this one would remake are not known yet.
            upstream = [d for d in job.deps if d.id in self.changed]
            if upstream:
                reason = Reason("upstream", f"{upstream[0].label} would run first",
                                tuple(f"{d.label} would run first" for d in upstream),
                                tuple(d.label for d in upstream))
        if job.rule.action is None:
            # Nothing to run: a rule that only gathers, or one whose outputs the user
            # provides (they must exist; flow never records, cleans or removes them).
            missing = _missing_outputs(job)
            if missing:
                raise UserError(f"rule {job.label} has no action, so its output {missing[0]} must exist already",
                                "Create the file, or give the rule a shell:, run: or script:.")
            reason = None
        if reason is None:
            self.events.job_skipped(job, None, None)
            self._finish(job)
            return
        if self.opt.touch:
            self._touch(job, key, parts)
            return
        if self._restart_temp_producers(job):
            return
        for name, limit in self.opt.resources.items():
            need = job.rule.resources.get(name, 0)
            if need > limit:
                raise UserError(f"rule {job.label} needs {name}={need}, but --resources allows {name}={limit}",
                                f"Raise --resources {name}=..., or lower the rule's resources:.")
        self.temp_needed.pop(job.id, None)
        if self.opt.dry_run:
            prepared = self.preparer.prepared(job)
            self.events.job_skipped(job, reason, prepared.display if prepared else None)
            self.summary.would_run.append((job, reason))
            self.changed.add(job.id)
            self._finish(job)
            return
        self._push_ready(job, reason, key, parts)

    def _push_ready(self, job: Job, reason: Reason, key: str, parts: dict) -> None:
        """Ready jobs start by priority, then longest path to a target, then age."""
        self.seq += 1
        heapq.heappush(self.ready, (-job.rule.priority, -self.depth.get(job.id, 0), self.seq, job, reason, key, parts))

    def _link(self, producer: Job, consumer: Job) -> None:
        if consumer not in self.consumers.setdefault(producer.id, []):
            self.consumers[producer.id].append(consumer)
        self.producers.setdefault(consumer.id, {})[producer.id] = producer

    def _expand(self, job: Job) -> bool:
        """Grow the DAG behind a finished checkpoint; False if the job must wait."""
        if self.opt.dry_run and any(d.id in self.changed for d in job.deps):
            self.summary.undetermined.append(job)
            self.events.job_undetermined(job, job.deps[0])
            self.changed.add(job.id)
            self._finish(job)
            return False
        total = len(self.jobs)
        self._add(self.dag.expand(job))
        if len(self.jobs) != total:
            self.events.planned(len(self.jobs))
        self.remaining[job.id] = sum(1 for d in job.deps if d.id not in self.done)
        for dep in job.deps:
            self._link(dep, job)
        if job.pending is None:
            self._expanded(job)
        if self.remaining[job.id] > 0:
            return False
        if job.pending is not None:  # nested checkpoint, already done
            return self._expand(job)
        return True

    def _restart_temp_producers(self, job: Job) -> bool:
        """A job that must run needs temp() inputs flow deleted: run their
        producers again. A reopened producer is no longer done, so every
        consumer of it that is not done waits for it again, and it waits for
        its own dependencies that are not done (some may be reopened too)."""
        producers = {}
        for path in self.rebuilder.missing_temp_inputs(job):
            producer = self.dag.producer.get(path)
            if producer is not None and producer.id in self.done and producer.id not in self.changed:
                producers.setdefault(producer.id, (producer, path))  # done, and not remade yet
        for producer, path in producers.values():
            self.done.discard(producer.id)
            self.released.discard(producer.id)
            self.events.job_reopened(producer)
            self.remaining[producer.id] = sum(
                1 for p in self.producers.get(producer.id, {}).values() if p.id not in self.done)
            for consumer in self.consumers.get(producer.id, ()):
                if consumer.id in self.running:  # it reads the producer's other outputs: let it end
                    self.remaining[producer.id] += 1
                    self.after.setdefault(consumer.id, []).append(producer)
                if consumer.id not in self.done:  # (a retry of a running one waits too)
                    self.remaining[consumer.id] = self.remaining.get(consumer.id, 0) + 1
            if job not in self.consumers.get(producer.id, ()):
                self._link(producer, job)
                self.remaining[job.id] = self.remaining.get(job.id, 0) + 1
            self.temp_needed[producer.id] = f"{path} (temp) is needed again by {job.label}"
            self.queue.append(producer)
        return bool(producers)

    def _start_ready(self) -> None:
        skipped = []
        while self.ready and not self.stopping:
            entry = heapq.heappop(self.ready)
            job = entry[3]
            if self.remaining.get(job.id, 0) > 0 or job.id in self.running or job.id in self.done \
                    or job.id in self.failed:
                continue  # waits for a reopened dependency (queued again when it is done), or stale
            threads = min(job.rule.threads, self.opt.cores)
            if threads > self.free_threads or not self._resources_fit(job):
                skipped.append(entry)
                if not self.running:
                    continue
                if len(skipped) > 64:  # nothing small enough is likely further down
                    break
                continue
            self._start(job, entry[4], entry[5], entry[6], threads)
        for entry in skipped:
            heapq.heappush(self.ready, entry)

    def _resources_fit(self, job: Job) -> bool:
        return all(job.rule.resources.get(name, 0) <= self.free_resources.get(name, 0)
                   for name in self.opt.resources)

    def _start(self, job: Job, reason: Reason, key: str, parts: dict, threads: int) -> None:
        problem = self._prepare_outputs(job)
        if problem is not None:  # nothing ran, and the old outputs stay: they are not this attempt's
            self._refuse(job, problem, user_error=True)
            return
        prepared = self.preparer.prepared(job)
        attempt = self.attempts.get(job.id, 0) + 1
        self.attempts[job.id] = attempt
        runtime = job.rule.resources.get("runtime")
        now = time.monotonic()
        self.running[job.id] = _Running(job, reason, key, parts, time.time(),
                                        now + runtime * 60 if runtime else None, attempt, threads)
        self.free_threads -= threads
        for name in self.opt.resources:
            self.free_resources[name] -= job.rule.resources.get(name, 0)
        self.events.job_started(job, reason, prepared.display, self.preparer.message(job))
        ctx = self.preparer.context(job) if prepared.in_worker else None
        self.executor.submit(Task(job.id, prepared.kind, prepared.payload, ctx, in_worker=prepared.in_worker))

    def _prepare_outputs(self, job: Job) -> str | None:
        """Remove old outputs (so that a half-written one is never mistaken for
        new) and create the directories outputs, logs and the benchmark go
        into; a text saying why not, if the job cannot start."""
        written = job.outputs + job.logs + ([job.benchmark] if job.benchmark else [])
        for path in written:
            if self.dag.leads_outside(path):
                return f"{path} leads outside the working directory through a symbolic link; nothing was written"
        for i, out in enumerate(job.outputs):
            if os.path.lexists(out):
                if "protected" in job.output_flags(i) and not os.stat(out).st_mode & stat.S_IWUSR:
                    return (f"output {out} is protected (read-only); delete it yourself "
                            "if it should be made again")
                try:
                    remove_output(out)
                except OSError as e:
                    return f"cannot remove the old {out}: {e.strerror}"
        for path in written:  # (a directory() output the job makes itself, as in Snakemake)
            parent = os.path.dirname(path)
            try:
                if parent:
                    os.makedirs(parent, exist_ok=True)
            except OSError as e:
                return f"cannot make the directory {parent} for {path}: {e.strerror}"
        return None

    def _complete(self, c: Completion) -> None:
        r = self.running.pop(c.job_id, None)
        if r is None:
            return
        job = r.job
        checked = r.ended is not None  # c is the contract check of a job that ended
        if not checked and c.ok and job.rule.schema and self._check_contract(r, c):
            return
        if c.ok:
            ended, c_job = r.ended or (time.time(), c)
            error = self._record(job, r, ended, c_job)
        else:
            error = c.error if checked else self._why_failed(r, c)
        if error is not None:  # (a broken contract is not retried: the same outputs would break it again)
            self._fail(r, error, c.returncode or 1, retry=not checked)
            return
        self._release(r)
        self.events.job_finished(job, time.time() - r.started)
        self.summary.ran += 1
        self.changed.add(job.id)
        self._finish(job)

    def _why_failed(self, r: _Running, c: Completion) -> str | None:
        error = c.error
        prepared = self.preparer.prepared(r.job)
        if prepared is not None and not prepared.in_worker and error:
            error += f"\ncommand: {prepared.display}"
        if error:
            error += self._last_words(r, c)
        return error

    def _check_contract(self, r: _Running, c: Completion) -> bool:
        """A job with a ``schema:`` counts as done only once a worker has read its
        tabular outputs (``rules.contracts``); False if it has none to check."""
        job = r.job
        outputs = [out for i, out in enumerate(job.outputs)
                   if "directory" not in job.output_flags(i) and contracts.checkable(out)]
        if not outputs:
            return False
        r.ended = (time.time(), c)
        self.running[job.id] = r
        self.executor.submit(Task(job.id, "contracts", (outputs, job.rule.schema, job.rule.name)))
        return True

    @staticmethod
    def _last_words(r: _Running, c: Completion) -> str:
        """The end of what a failed job wrote to stderr or, when it sent that
        to its log, of the log it wrote this time."""
        if c.stderr_tail:
            return "\nits stderr ended with:\n" + _indent(c.stderr_tail)
        for log in r.job.logs:
            try:  # (file times lag the clock by up to a tick: allow a second)
                written = os.path.getmtime(log) >= r.started - 1
            except OSError:
                continue
            ending = _last_lines(log) if written else None
            if ending:
                return f"\n{log} ends with:\n" + _indent(ending)
        return ""

    def _release(self, r: _Running) -> None:
        """A job ended: give its threads and resources back, and let producers
        reopened while it ran go ahead."""
        self.free_threads += r.threads
        for name in self.opt.resources:
            self.free_resources[name] += r.job.rule.resources.get(name, 0)
        for producer in self.after.pop(r.job.id, ()):
            self.remaining[producer.id] -= 1
            if self.remaining[producer.id] == 0:
                self.queue.append(producer)

    def _fail(self, r: _Running, error: str, status: int, retry: bool = True) -> None:
        """A job attempt failed: remove what it wrote, record the attempt, retry or stop."""
        job = r.job
        self._release(r)
        for out in job.outputs:
            remove_output(out)
        self.state.record_failure(job.id, job.rule.name, job.wildcards, r.started, time.time(), status)
        r.ended = None
        if retry and r.attempt <= job.rule.retries and not self.stopping:
            self.events.job_failed(job, error, will_retry=True)
            self._push_ready(job, r.reason, r.key, r.parts)
            return
        logs = [log for log in job.logs if os.path.exists(log)]
        if logs:
            error += f"\nits log: {', '.join(logs)}"
        self._refuse(job, error)

    def _refuse(self, job: Job, error: str, user_error: bool = False) -> None:
        """``job`` failed for good: say why; stop starting jobs unless -k."""
        self.events.job_failed(job, error, will_retry=False)
        self.failed.add(job.id)
        self.summary.failed.append(job.label)
        self.summary.user_errors += user_error
        if not self.opt.keep_going:
            self.stopping = True

    def _record(self, job: Job, r: _Running, ended: float, c: Completion) -> str | None:
        """Check a finished job's outputs and record them in one transaction
        (the moment the job counts as done); an error text if they are not right."""
        hasher = self.rebuilder.hasher
        outputs = []
        for i, out in enumerate(job.outputs):
            hasher.forget(out)
            try:
                digest = hasher.digest(out)
            except OSError as e:
                return f"cannot read its output {out}: {e.strerror}"
            if digest is None:
                return f"the job finished but did not make its output {out}"
            flags = job.output_flags(i)
            if "directory" in flags and not os.path.isdir(out):
                return f"output {out} is marked directory() but is a file"
            if "directory" not in flags and os.path.isdir(out):
                return f"output {out} is a directory: mark it directory(\"{out}\") in the rule"
            outputs.append((out, digest, "temp" in flags))
        key, parts = self.rebuilder.key(job, recorded_hashes=False) if not r.key else (r.key, r.parts)
        self.state.record_job(job.id, job.rule.name, job.wildcards, key, parts, outputs,
                              hasher.take_learned(), r.started, ended)
        try:
            self._after_recorded(job, ended - r.started, c)
        except OSError as e:
            self.events.note(f"warning: {job.label}: {e.filename or ''}: {e.strerror}")
        return None

    def _after_recorded(self, job: Job, seconds: float, c: Completion) -> None:
        """What follows a recorded job: protected() outputs made read-only, an
        empty log for one the job did not write (as in Snakemake), the benchmark."""
        for i, out in enumerate(job.outputs):
            if "protected" in job.output_flags(i):
                make_readonly(out)
        for log in job.logs:
            if not os.path.lexists(log):
                open(log, "a").close()
        if job.benchmark:
            _write_benchmark(job.benchmark, seconds, c)

    def _touch(self, job: Job, key: str, parts: dict) -> None:
        """--touch: record existing outputs as made by flow, without running."""
        missing = _missing_outputs(job)
        if missing:
            raise UserError(f"--touch: output {missing[0]} of {job.label} does not exist, so it cannot be recorded")
        hasher = self.rebuilder.hasher
        outputs = [(out, hasher.digest(out), "temp" in job.output_flags(i)) for i, out in enumerate(job.outputs)]
        now = time.time()
        self.state.record_job(job.id, job.rule.name, job.wildcards, key, parts, outputs,
                              hasher.take_learned(), now, now)
        self.events.note(f"touch {job.label}")
        self.events.job_skipped(job, None, None)
        self._finish(job)

    def _finish(self, job: Job) -> None:
        self.done.add(job.id)
        if job.rule.checkpoint and not (self.opt.dry_run and job.id in self.changed):
            self.dag.checkpoint_done(job)
        for consumer in self.consumers.get(job.id, ()):
            if consumer.id in self.done or consumer.id in self.failed:
                continue
            n = self.remaining.get(consumer.id, 0) - 1
            self.remaining[consumer.id] = n
            if n == 0:
                self.queue.append(consumer)
        if self.temps and not self.opt.dry_run and not self.opt.notemp:
            self._release_temps(job)

    def _release_temps(self, job: Job) -> None:
        """Delete temp() outputs that nothing in this run can need again.

        A producer's temp files go once every consumer is done and *settled*:
        makes no temp file itself, or has released its own. (A done consumer
        whose temp output is still needed downstream may be remade, and then
        needs these files back.) Releasing one producer may settle the ones
        before it, up a chain of temp files. While a checkpoint's dependants
        are not expanded, new consumers may still appear, so releases wait."""
        stack = [job, *self.producers.get(job.id, {}).values()]
        busy: set[str] | None = None  # directories running jobs write into, once needed
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
            for i, out in enumerate(p.outputs):
                if "temp" in p.output_flags(i) and out not in self.rebuilder.targets:
                    if os.path.lexists(out):
                        remove_output(out)
                        busy = self._busy_dirs() if busy is None else busy
                        remove_empty_parents(out, keep=busy)
                    self.rebuilder.hasher.forget(out)
            stack.extend(self.producers.get(p.id, {}).values())

    def _expanded(self, job: Job | None) -> None:
        """``job``'s inputs are known now; releases held back for it may go."""
        if job is not None:
            self.unexpanded.discard(job.id)
        if not self.unexpanded and self.deferred and not self.opt.dry_run and not self.opt.notemp:
            deferred, self.deferred = list(self.deferred.values()), {}
            for p in deferred:
                self._release_temps(p)

    def _busy_dirs(self) -> set[str]:
        """Directories running jobs write into (an emptied one must stay)."""
        dirs: set[str] = set()
        for r in self.running.values():
            for path in r.job.outputs + r.job.logs + ([r.job.benchmark] if r.job.benchmark else []):
                d = os.path.dirname(path)
                while d and d not in dirs:
                    dirs.add(d)
                    d = os.path.dirname(d)
        return dirs

    # time limits and interruption --------------------------------------------------

    def _wait_timeout(self) -> float | None:
        deadlines = [r.deadline for r in self.running.values() if r.deadline is not None]
        if not deadlines:
            return 0.5 if self.events.live else None
        return max(0.0, min(min(deadlines) - time.monotonic(), 0.5))

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for r in list(self.running.values()):
            if r.deadline is not None and now > r.deadline:
                runtime = r.job.rule.resources.get("runtime")
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
            for out in r.job.outputs:
                remove_output(out)


def _hurry_on_signals(executor: Executor) -> None:
    """While flow stops its jobs, another Ctrl-C (or SIGTERM) must not cut
    the cleanup short: it makes the jobs be killed at once instead."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: executor.hurry())


def _missing_outputs(job: Job) -> list[str]:
    return [o for o in job.outputs if not os.path.lexists(o)]


def _write_benchmark(path: str, seconds: float, c: Completion) -> None:
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    rss = f"{c.max_rss_kb / 1024:.2f}" if c.max_rss_kb else "NA"
    cpu = f"{c.cpu_seconds:.2f}" if c.cpu_seconds is not None else "NA"
    with open(path, "w", encoding="utf-8") as f:
        f.write("s\th:m:s\tmax_rss\tcpu_time\n")
        f.write(f"{seconds:.4f}\t{h}:{m:02d}:{s:02d}\t{rss}\t{cpu}\n")


def _indent(text: str) -> str:
    return "\n".join("  " + ln for ln in text.split("\n"))


def _last_lines(path: str, lines: int = 10) -> str | None:
    """The end of a log file, for a failed job's message (None if empty or unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 16 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    kept = text.rstrip("\n").split("\n")[-lines:]
    return "\n".join(ln[:300] for ln in kept) if any(ln.strip() for ln in kept) else None
