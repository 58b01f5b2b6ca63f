"""What happens to a job's files around a run of it (the scheduler decides
only when it runs).

Before: old outputs go (a half-written one must never pass for new), the
directories its outputs, logs and benchmark go into are made, and an output
that is protected or leads outside the working directory stops it. After:
its outputs are hashed and recorded (``State.record_job``: durable at once,
in the store with others within ``store_due_records``'s bound), the moment it counts as
done; a job with a ``schema:`` is recorded only once a worker has checked
its tabular outputs, a second step submitted when the job ends. A failed
attempt's outputs are removed, and its message ends with the job's own last
words (its stderr or its log). A job that succeeded has its touch() outputs
made (or their times updated) before they are recorded. ``--touch`` records outputs without a run,
and temp() outputs nothing needs any more are deleted here.

With a shared cache (``--cache``, ``shared_cache``), a job's recorded
outputs and logs are stored under its key, and a job about to run whose key
the cache holds has them restored instead, checked against the digests
stored with them, and recorded as made by flow (with no attempt in the
run history: nothing ran); a forced job (-F, -R)
runs. An entry is keyed by the job's key and its log paths (the key leaves
logs out). Not cached: rules with ``cache: False`` or named by
``nocache:``, jobs without outputs (what they do is their effect), with a
temp() output (not kept), with an ``ancient()`` input (its content is not
in the key) or with a ``benchmark:`` (which measures a run). Storing
happens once the job counts as done (``share``): an interruption then
loses the entry, never the job's outputs.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flow.rules import contracts
from flow.rules.base import temp_beside

from ..decide.hashing import Hasher
from ..decide.schema import AttemptRecord
from ..decide.state import State
from ..errors import UserError
from ..graph.dag import DAG
from ..graph.job import Job
from .events import RunObserver
from .executor import Completion, Executor, Task
from .files import make_readonly, remove_empty_parents, remove_output
from .prepare import Preparer
from .processes import TAIL_BYTES, Usage, tail_text

if TYPE_CHECKING:
    from ..decide.rebuild import Reason
    from .shared_cache import SharedCache


@dataclass
class Attempt:
    """One start of a job: what its outputs are recorded with."""

    job: Job
    key: str
    parts: dict
    started: float  # time.time() when it started
    reason: Reason | None = None  # why it runs
    number: int = 1  # the how-manieth attempt of the job in this run


@dataclass(frozen=True)
class Outcome:
    """What the end of a job's attempt (or of the check of its outputs) came to:
    its outputs recorded, a failure, or neither yet, while its outputs are checked."""

    recorded: bool
    error: str | None = None  # why the attempt failed
    status: int = 1  # recorded with the failed attempt
    retry: bool = True  # worth another attempt (a broken contract is not: the same outputs break it again)
    usage: Usage | None = None  # what the failed attempt used, as far as it was measured

    @property
    def checking(self) -> bool:
        """A worker checks the outputs; the check's completion comes next."""
        return not self.recorded and self.error is None


RECORDED = Outcome(recorded=True)
NOT_STARTED = 2  # the status a job that could not start is recorded with (flow's exit code for it)
CHECKING = Outcome(recorded=False)


class Outputs:
    def __init__(self, dag: DAG, state: State, hasher: Hasher, preparer: Preparer,
                 executor: Executor | None, events: RunObserver):
        self.dag = dag
        self.state = state
        self.hasher = hasher
        self.preparer = preparer
        self.executor = executor
        self.events = events
        self.run_id: str | None = None  # the run the attempts recorded belong to (``history``)
        self.checking: dict[str, tuple[float, Completion]] = {}  # job id -> when it ended, how
        self.latency_wait = 0.0  # seconds a finished job's outputs may take to appear (a shared file system)
        self.cache: SharedCache | None = None  # --cache: job results shared between working directories
        self.to_share: dict[str, tuple[str, list[tuple[str, str]]]] = {}  # job id -> key, recorded files
        self.cache_warned = False

    # before a run ----------------------------------------------------------------

    def prepare(self, job: Job) -> str | None:
        """Remove old outputs (so that a half-written one is never mistaken for
        new) and create the directories outputs, logs and the benchmark go
        into; a text saying why not, if the job cannot start."""
        written = job.written
        for path in written:
            if self.dag.confinement.leads_outside(path):
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
        for log in job.logs:  # a log is an output too: an earlier attempt's must not pass for this one's
            if os.path.lexists(log):
                try:
                    remove_output(log)
                except OSError as e:
                    return f"cannot remove the old {log}: {e.strerror}"
        for path in written:  # (a directory() output the job makes itself, as in Snakemake)
            parent = os.path.dirname(path)
            try:
                if parent:
                    os.makedirs(parent, exist_ok=True)
            except OSError as e:
                return f"cannot make the directory {parent} for {path}: {e.strerror}"
        if job.benchmark:
            self.executor.benchmark(job.id)
        return None

    # the records ---------------------------------------------------------------------

    def records_due_in(self) -> float | None:
        """Seconds until the records waiting for the store are due (None:
        none wait): how long the scheduler may wait for a job at most."""
        return self.state.due_in()

    def store_due_records(self) -> None:
        """Take the records that have waited long enough into the store (so
        that ``flow report`` or ``flow lineage`` elsewhere see them soon)."""
        due = self.state.due_in()
        if due is not None and due <= 0:
            self.state.flush()

    # after a run -----------------------------------------------------------------

    def ended(self, a: Attempt, c: Completion) -> Outcome:
        """An attempt of a job ended, or the check of its outputs did: record
        its outputs, say why it failed, or submit the check of its outputs
        (a job with a ``schema:`` counts as done only once a worker has read
        its tabular outputs: ``rules.contracts``)."""
        checked = self.checking.pop(a.job.id, None)
        if checked is not None:  # c is the check's
            if not c.ok:
                return Outcome(False, c.error or "failed", retry=False)
            ended, c = checked
            return self._record(a, ended, c, retry=False)
        if not c.ok:
            return Outcome(False, self._failure_text(a, c), status=c.returncode or 1, usage=c.usage)
        problem = touch_flags(a.job)
        if problem is not None:
            return Outcome(False, problem, c.returncode or 1, usage=c.usage)
        if a.job.rule.schema and self._submit_check(a.job, c):
            return CHECKING
        return self._record(a, time.time(), c, retry=True)

    def _submit_check(self, job: Job, c: Completion) -> bool:
        outputs = [out for i, out in enumerate(job.outputs)
                   if "directory" not in job.output_flags(i) and contracts.checkable(out)]
        if not outputs:
            return False
        self.checking[job.id] = (time.time(), c)
        self.executor.submit(Task(job.id, "contracts", (outputs, job.rule.schema, job.rule.name), local=True))
        return True

    def _record(self, a: Attempt, ended: float, c: Completion, retry: bool) -> Outcome:
        """Check a finished job's outputs and record them, all or nothing
        (``State.record_job``: the moment the job counts as done), or say
        what is wrong with them."""
        job, hasher = a.job, self.hasher
        outputs = []
        for i, out in enumerate(job.outputs):
            hasher.forget(out)
            try:
                digest = hasher.digest(out)
            except OSError as e:
                return Outcome(False, f"cannot read its output {out}: {e.strerror}", c.returncode or 1, retry)
            problem = None
            flags = job.output_flags(i)
            if digest is None and self.latency_wait:
                digest = self._appearing(out)
            if digest is None:
                problem = f"the job finished but did not make its output {out}"
                if self.latency_wait:
                    problem += (f" (waited {self.latency_wait:g} s for it to appear; "
                                "raise --latency-wait if the file system shows files late)")
            elif "directory" in flags and not os.path.isdir(out):
                problem = f"output {out} is marked directory() but is a file"
            elif "directory" not in flags and os.path.isdir(out):
                problem = f"output {out} is a directory: mark it directory(\"{out}\") in the rule"
            if problem is not None:
                return Outcome(False, problem, c.returncode or 1, retry)
            outputs.append((out, digest, "temp" in flags))
        if job.benchmark:  # (before the record: a crash between them reruns the job, which writes it again)
            try:
                write_benchmark(job.benchmark, ended - a.started, c.usage)
            except OSError as e:
                self.events.note(f"warning: {job.label}: cannot write {job.benchmark}: {e.strerror}")
        try:
            outputs += self._logs(job)
        except OSError as e:
            return Outcome(False, f"cannot write or read its log {e.filename}: {e.strerror}", c.returncode or 1, retry)
        record = self.attempt_record(a, ended, 0, c.usage, sum(hasher.size(p) or 0 for p, _, _ in outputs))
        prepared = self.preparer.prepared(job)
        self.state.record_job(record, a.key, a.parts, outputs, hasher.take_learned(),
                              prepared.display if prepared is not None else None)
        try:
            self._after_recorded(job)
        except OSError as e:
            self.events.note(f"warning: {job.label}: {e.filename or ''}: {e.strerror}")
        if self.cacheable(job):
            self.to_share[job.id] = (a.key, [(path, digest) for path, digest, _ in outputs])
        return RECORDED

    # the shared cache ------------------------------------------------------------------

    def cacheable(self, job: Job) -> bool:
        """Whether the job's results go to and come from the shared cache."""
        return (self.cache is not None and job.rule.cache and bool(job.outputs) and not job.benchmark
                and not job.rule.ancient_inputs
                and not any("temp" in job.output_flags(i) for i in range(len(job.outputs))))

    def restored(self, a: Attempt) -> bool:
        """Whether the shared cache held the job's outputs and logs: then they
        are restored, checked and recorded, and the job need not run. An entry
        whose files do not match their stored digests is removed from the
        cache (if it can be), said, and not used."""
        job = a.job
        if not self.cacheable(job) or (a.reason is not None and a.reason.kind == "forced"):
            return False
        paths = [*job.outputs, *job.logs]
        entry = self.cache.lookup(cache_key(a.key, job.logs))
        if entry is None or len(entry.files) != len(paths):
            return False
        try:
            self.cache.restore(entry, paths)
            outputs = []
            for path, stored in zip(paths, entry.files, strict=True):
                self.hasher.forget(path)
                digest = self.hasher.digest(path)
                if digest != stored.digest:
                    self._unmatched(job, entry.key, path)
                    return False
                outputs.append((path, digest, False))
        except OSError:  # (gone meanwhile, pruned elsewhere: a miss)
            self._unrestore(job)
            return False
        record = self.attempt_record(a, time.time(), 0, None, entry.size)
        prepared = self.preparer.prepared(job)
        # (No attempt in the history: nothing ran here, and its time would skew the rule's statistics.)
        self.state.record_job(record, a.key, a.parts, outputs, self.hasher.take_learned(),
                              prepared.display if prepared is not None else None, ran=False)
        self._after_recorded(job)
        return True

    def _unmatched(self, job: Job, key: str, path: str) -> None:
        """A restored file that is not what was stored: undo, and take the entry out."""
        self._unrestore(job)
        try:
            self.cache.discard(key)
            what = f"removed that entry from {self.cache.root}"
        except OSError as e:
            what = f"could not remove that entry ({e.strerror}): `flow cache prune` or its owner can"
        self.events.note(f"warning: {job.label}: the shared cache's copy of {path} does not match the hash "
                         f"stored with it: {what}; running the job")

    def _unrestore(self, job: Job) -> None:
        for path in (*job.outputs, *job.logs):
            remove_output(path)
            self.hasher.forget(path)

    def share(self, job: Job) -> None:
        """Keep a job's recorded outputs and logs in the shared cache, once
        it counts as done (a failure to is said once, and costs the job nothing)."""
        if job.id not in self.to_share:
            return
        key, files = self.to_share.pop(job.id)
        try:
            self.cache.store(cache_key(key, job.logs), job.rule.name, files)
        except (OSError, ValueError) as e:
            if not self.cache_warned:
                self.cache_warned = True
                self.events.note(f"warning: cannot store results in the shared cache {self.cache.root}: "
                                 f"{getattr(e, 'strerror', None) or e} (restoring still works)")

    def _appearing(self, path: str) -> str | None:
        """The digest of an output that a shared file system shows late, once
        it appears within ``latency_wait`` (None if it does not)."""
        deadline = time.monotonic() + self.latency_wait
        while time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            self.hasher.forget(path)
            digest = self.hasher.digest(path)
            if digest is not None:
                return digest
        return None

    def _logs(self, job: Job) -> list[tuple[str, str | None, bool]]:
        """A finished job's logs, recorded as its outputs (so another rule can
        read one and ``flow clean`` removes them); an empty one for a log the
        job did not write, as Snakemake makes."""
        logs = []
        for log in job.logs:
            if not os.path.lexists(log):
                open(log, "a").close()
            self.hasher.forget(log)
            logs.append((log, self.hasher.digest(log), False))
        return logs

    def _after_recorded(self, job: Job) -> None:
        """What follows a recorded job: protected() outputs made read-only."""
        for i, out in enumerate(job.outputs):
            if "protected" in job.output_flags(i):
                make_readonly(out)

    def touch(self, job: Job, key: str, parts: dict) -> None:
        """--touch: record existing outputs as made by flow, without running."""
        missing = missing_outputs(job)
        if missing:
            raise UserError(f"--touch: output {missing[0]} of {job.label} does not exist, so it cannot be recorded")
        hasher = self.hasher
        outputs = [(out, hasher.digest(out), "temp" in job.output_flags(i)) for i, out in enumerate(job.outputs)]
        outputs += self._logs(job)  # (as after a run: else the missing logs would make it run)
        now = time.time()
        record = AttemptRecord(job.id, job.rule.name, job.wildcards, now, now, 0, self.run_id)
        self.state.record_job(record, key, parts, outputs, hasher.take_learned(), ran=False)

    # failures ----------------------------------------------------------------------

    def _failure_text(self, a: Attempt, c: Completion) -> str:
        """Why an attempt failed: the executor's words, the command for one that
        is not a worker's job, and the end of what the job itself wrote."""
        error = c.error or "failed"
        prepared = self.preparer.prepared(a.job)
        if prepared is not None and not prepared.in_worker:
            error += f"\ncommand: {prepared.display}"
        return error + _last_words(a, c)

    def discard(self, a: Attempt, outcome: Outcome) -> None:
        """A failed attempt: remove what it wrote, and record that it failed."""
        self.remove(a.job)
        self.state.record_failure(self.attempt_record(a, time.time(), outcome.status, outcome.usage, None))

    def not_started(self, job: Job, error: str) -> None:
        """A job that could not start (a mistake in its rule, an output it may
        not write): its history says so, as a failure of status 2."""
        now = time.time()
        first = error.partition("\n")[0]
        self.state.record_failure(AttemptRecord(job.id, job.rule.name, job.wildcards, now, now, NOT_STARTED,
                                                self.run_id, reason=f"could not start: {first}"))

    def attempt_record(self, a: Attempt, ended: float, status: int, usage: Usage | None,
                       bytes_out: int | None) -> AttemptRecord:
        """What the history keeps of an attempt: when, how it ended, why it ran,
        and what it used (its inputs' sizes are known: they were hashed)."""
        job, size = a.job, self.hasher.size
        return AttemptRecord(
            job.id, job.rule.name, job.wildcards, a.started, ended, status, self.run_id, a.number,
            usage.cpu_seconds if usage else None, usage.max_rss_kb if usage else None,
            sum(size(p) or 0 for p in job.inputs), bytes_out, str(a.reason) if a.reason is not None else None)

    def remove(self, job: Job) -> None:
        """Remove what a job that did not finish wrote (it was stopped)."""
        for out in job.outputs:
            remove_output(out)

    @staticmethod
    def naming_logs(job: Job, error: str) -> str:
        """A job's final failure message, with the logs it left to read."""
        logs = [log for log in job.logs if os.path.exists(log)]
        return error + f"\nits log: {', '.join(logs)}" if logs else error

    # temp() files and the end of the run -------------------------------------------

    def delete_temps(self, paths: list[str], running: Iterable[Job]) -> None:
        """Delete temp() outputs nothing needs any more, and the directories that
        leaves empty, but those ``running`` jobs write into."""
        busy: set[str] | None = None
        for out in paths:
            if os.path.lexists(out):
                remove_output(out)
                busy = _dirs_written(running) if busy is None else busy
                remove_empty_parents(out, keep=busy)
            self.hasher.forget(out)

    def settle(self) -> None:
        """Hash fresh outputs again once their timestamps can be trusted (``Hasher.settle``)."""
        self.hasher.settle()

    def close(self) -> None:
        """Keep what hashing learned about files (their stat signatures) for the next run."""
        self.state.save_stats(self.hasher.take_learned())


def cache_key(key: str, logs: list[str]) -> str:
    """A job's key in the shared cache: its key and its log paths, which
    the key leaves out (an entry holds the logs too)."""
    if not logs:
        return key
    import xxhash

    return xxhash.xxh3_128_hexdigest("\0".join([key, *logs]).encode())


def touch_flags(job: Job) -> str | None:
    """Make the job's touch() outputs, flag files it need not write itself:
    created empty, or their times set to now if the job wrote them (as
    Snakemake does once a job has succeeded); what went wrong, if anything."""
    for i, out in enumerate(job.outputs):
        if "touch" not in job.output_flags(i):
            continue
        try:
            if "directory" in job.output_flags(i):
                os.makedirs(out, exist_ok=True)
            else:
                with open(out, "ab"):  # (its bytes, if the job wrote some, stay)
                    pass
            os.utime(out)
        except OSError as e:
            return f"cannot touch its output {out}: {e.strerror}"
    return None


def missing_outputs(job: Job) -> list[str]:
    return [o for o in job.outputs if not os.path.lexists(o)]


def _dirs_written(jobs: Iterable[Job]) -> set[str]:
    """Directories these jobs write into, with every directory above them."""
    dirs: set[str] = set()
    for job in jobs:
        for path in job.written:
            d = os.path.dirname(path)
            while d and d not in dirs:
                dirs.add(d)
                d = os.path.dirname(d)
    return dirs


def _last_words(a: Attempt, c: Completion) -> str:
    """The end of what a failed job wrote to stderr or, when it sent that
    to its log, of the log it wrote this time."""
    if c.stderr_tail:
        return "\nits stderr ended with:\n" + _indent(c.stderr_tail)
    for log in a.job.logs:
        try:  # (file times lag the clock by up to a tick: allow a second)
            written = os.path.getmtime(log) >= a.started - 1
        except OSError:
            continue
        ending = _file_tail(log) if written else None
        if ending:
            return f"\n{log} ends with:\n" + _indent(ending)
    return ""


def _file_tail(path: str) -> str | None:
    """The last lines of a log file (None if empty or unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - TAIL_BYTES))
            return tail_text(f.read())
    except OSError:
        return None


def _indent(text: str) -> str:
    return "\n".join("  " + ln for ln in text.split("\n"))


BENCHMARK_COLUMNS = ("s", "h:m:s", "max_rss", "max_vms", "max_uss", "max_pss",
                     "io_in", "io_out", "mean_load", "cpu_time")


def write_benchmark(path: str, seconds: float, usage: Usage | None) -> None:
    """A ``benchmark:`` file as Snakemake writes one, so that what reads
    Snakemake's reads flow's: its ten columns, tab-separated under a header;
    memory and I/O in MB (2**20 bytes), ``mean_load`` the CPU time as a
    percentage of the wall time, each to two decimals; ``NA`` where a value
    could not be measured (Snakemake's word for it)."""
    u = usage or Usage()
    load = 100 * u.cpu_seconds / seconds if u.cpu_seconds is not None and seconds > 0 else None
    row = [_decimals(round(seconds, 4)), _hms(seconds),
           *(_decimals(kb / 1024 if kb is not None else None)
             for kb in (u.max_rss_kb, u.max_vms_kb, u.max_uss_kb, u.max_pss_kb)),
           *(_decimals(b / 2**20 if b is not None else None) for b in (u.io_in_bytes, u.io_out_bytes)),
           _decimals(load), _decimals(u.cpu_seconds)]
    tmp = temp_beside(path)  # (renamed into place: never a half-written file)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\t".join(BENCHMARK_COLUMNS) + "\n" + "\t".join(row) + "\n")
    os.replace(tmp, path)


def _decimals(value: float | None) -> str:
    return "NA" if value is None else f"{value:.2f}"


def _hms(seconds: float) -> str:
    """Whole seconds as ``h:mm:ss``, with ``N day(s), `` before past a day (as Python's timedelta)."""
    days, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    clock = f"{h}:{m:02d}:{s:02d}"
    return f"{days} day{'s' if days != 1 else ''}, {clock}" if days else clock
