"""The stamp, ``.flow/stamp``: proof from ``stat`` alone that jobs are still
up to date, so that a run that changes nothing does nothing else.

Deciding a job reads the definitions and the graph (``graph.cache``'s
fingerprint and checks), the output records of the state store, and the
contents of the job's inputs, outputs and scripts; the existence of its
logs; and the options that force or choose what counts (-F, -R, --touch,
``--rerun-triggers``). At the end of a run after which every job of its
graph is up to date, the stamp keeps all of that in a form that is cheap to
compare:

- the graph's fingerprint and the rerun triggers (``basis``), the checks
  the graph was inferred under, and which graph file it was (``graph``);
- the state store's generation, which every change of an output record
  replaces (``State.mark``);
- the stat signature (size, mtime, inode, ctime) of every file the jobs
  read, write or run, as of when the run decided with its content
  (``Hasher.decided_signature``), and the logs, which must exist.

While all of that holds, every decision would come out as it did: a run
then stats every file and is done, without the graph, the store's rows or
any deciding (``holds``). When some files changed, the stamp still vouches
for each job none of whose files did (``vouches``), so only the jobs around
a change are decided: a job downstream of one that runs sees its inputs
rewritten, so it is decided too. A signature the stamp cannot vouch for (a
directory, a file hashed too soon after it changed) keeps the jobs that
touch it from being vouched for, and the whole run from being proved.

Never written for a workflow with checkpoints or temp() files, or a job
that always runs (those change from run to run by design), nor by a dry
run or one with -F, -R or --touch. Like ``.flow/keys``, it is written whole
and checksummed (``engine.cachefile``); a damaged one is not read.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable, Iterable
from itertools import chain

import xxhash

from .. import cachefile
from ..graph.job import Job
from .hashing import NOT_A_FILE

FILE = "stamp"
FORMAT = 1  # raise it when what a stamp holds, or what a decision reads, changes
_NAME = b"flow-stamp\0"


def basis(fingerprint: str, triggers: Iterable[str]) -> str:
    """What a stamp is written for besides the file system and the store."""
    return xxhash.xxh3_128_hexdigest(repr((FORMAT, fingerprint, sorted(triggers))).encode())


def stampable(rules) -> bool:
    """Whether runs of a workflow with these rules can leave a stamp."""
    return not any(rule.checkpoint or rule.makes_temp for rule in rules)


class Stamp:
    def __init__(self, basis_: str, graph: str | None, checks: tuple, mark: str,
                 counts: tuple[int, int], files: dict, logs: list[str], sources: dict[str, tuple[str, ...]]):
        self.basis = basis_
        self.graph = graph  # the graph file's serial (``GraphCache.serial``)
        self.checks = checks
        self.mark = mark
        self.counts = counts  # jobs with an action, jobs up to date (as a run that decides them counts)
        self.files = files  # path -> signature (None: missing; NOT_A_FILE: nothing to vouch with)
        self.logs = logs
        self.sources = sources  # job id -> the files its action reads (its script)

    # reading ----------------------------------------------------------------------------

    @classmethod
    def read(cls, directory: str, basis_: str) -> Stamp | None:
        """The stamp in ``directory`` if it is intact and written for ``basis_``."""
        payload = cachefile.read(os.path.join(directory, FILE), _NAME)
        if payload is None:
            return None
        try:
            fields = marshal.loads(payload)
            if fields[0] != basis_:
                return None
            _, graph, checks, mark, counts, paths, signatures, logs, sources = fields
            return cls(basis_, graph, checks, mark, tuple(counts), dict(zip(paths, signatures, strict=True)),
                       logs, sources)
        except (ValueError, EOFError, TypeError, IndexError):
            return None

    @property
    def complete(self) -> bool:
        """Whether it vouches for every file (else no run is proved whole)."""
        return NOT_A_FILE not in self.files.values()

    def holds(self, checks_hold: Callable[[tuple, Iterable[str]], bool]) -> bool:
        """Whether every job is still up to date: ``checks_hold(checks, known)``
        says the graph's checks hold (those of paths in ``known`` aside, which
        this checks), and every file is as stamped. (The store's mark is the
        caller's to compare.)"""
        if not self.complete or not checks_hold(self.checks, self.files):
            return False
        stat = os.stat
        for path, was in self.files.items():
            try:
                st = stat(path)
            except (FileNotFoundError, NotADirectoryError):
                if was is not None:
                    return False
                continue
            if was is None or (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) != was:
                return False
        return all(os.path.lexists(log) for log in self.logs)

    def vouches(self, job: Job, signature: Callable[[str], object]) -> bool:
        """Whether ``job`` is still up to date as far as the stamp can tell:
        each of its files as stamped (``signature``: as this run sees it),
        its logs there. Only for a run of the stamped graph and store."""
        files = self.files
        for path in chain(job.inputs, job.outputs, self.sources.get(job.id, ())):
            was = files.get(path, NOT_A_FILE)
            if was == NOT_A_FILE or signature(path) != was:
                return False
        return all(os.path.lexists(log) for log in job.logs)

    # writing ----------------------------------------------------------------------------

    @staticmethod
    def write(directory: str, basis_: str, graph: str | None, checks: tuple, mark: str,
              jobs: Iterable[Job], signature: Callable[[str], object],
              sources: Callable[[Job], tuple[str, ...] | None]) -> bool:
        """Keep a stamp for ``jobs``, every one up to date now, from the
        signatures the run decided with (``signature``) and the files each
        job's action reads (``sources``; None: not known, so no stamp).
        False if there is nothing it could vouch for. Best effort, as every
        cache: one that cannot be written costs the next run time."""
        files: dict = {}
        logs: list[str] = []
        job_sources: dict[str, tuple[str, ...]] = {}
        total = up_to_date = 0
        for job in jobs:
            if job.rule.action is not None and not job.outputs:
                return False  # it always runs
            read = sources(job)
            if read is None:
                return False
            if read:
                job_sources[job.id] = read
            for path in chain(job.inputs, job.outputs, read):
                if path not in files:
                    files[path] = signature(path)
            logs.extend(job.logs)
            total += job.rule.action is not None
            up_to_date += job.rule.action is not None or bool(job.outputs)
        if not all(os.path.lexists(log) for log in logs):
            return False
        paths = list(files)
        payload = marshal.dumps((basis_, graph, checks, mark, (total, up_to_date), paths,
                                 [files[p] for p in paths], logs, job_sources))
        cachefile.write(os.path.join(directory, FILE), _NAME, payload)
        return True
