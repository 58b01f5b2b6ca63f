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

While all of that holds, every decision would come out as it did. A run
compares the mark, then stats every file once, under the run lock
(``observe``): if nothing changed, it is done, without the graph, the
store's rows or any deciding (``holds``). Otherwise the stamp still vouches
for each job none of whose files changed (``vouches``), so only the jobs
around a change are decided; a job that must run marks every file it
writes changed (``will_change``: its logs and benchmark file too, which
another job may read), so the jobs downstream of it are decided too. A
signature the stamp cannot vouch for (a directory, a file hashed too soon
after it changed or changed during the run) keeps the jobs that touch it
from being vouched for, and the whole run from being proved.

The stamp is consistent with itself, or not written: a file that came or
went between inferring the graph and deciding with it leaves none. A
damaged store is noticed by the first run that reads its rows (a proved run
reads none); it takes the stamp with it.

Never written for a workflow with checkpoints or temp() files, or a job
that always runs (those change from run to run by design), nor by a dry
run or one with -F, -R or --touch. Like ``.flow/keys``, it is written whole
and checksummed (``engine.cachefile``); a damaged one is not read.
"""

from __future__ import annotations

import marshal
import os
import stat
import threading
from array import array
from collections.abc import Callable, Iterable
from itertools import chain

import xxhash

from .. import cachefile
from ..graph.job import Job
from .hashing import NOT_A_FILE, Hasher, file_digest, settled

FILE = "stamp"
FORMAT = 2  # raise it when what a stamp holds, or what a decision reads, changes
_NAME = b"flow-stamp\0"


def basis(fingerprint: str, triggers: Iterable[str]) -> str:
    """What a stamp is written for besides the file system and the store."""
    return xxhash.xxh3_128_hexdigest(repr((FORMAT, fingerprint, sorted(triggers))).encode())


def stampable(rules) -> bool:
    """Whether runs of a workflow with these rules can leave a stamp."""
    return not any(rule.checkpoint or rule.makes_temp for rule in rules)


class Stamp:
    def __init__(self, basis_: str, graph: str | None, checks: tuple, mark: str, counts: tuple[int, int],
                 paths: list[str], numbers: array, inodes: array, logs: list[str],
                 sources: dict[str, tuple[str, ...]]):
        self.basis = basis_
        self.graph = graph  # the graph file's serial (``GraphCache.serial``)
        self.checks = checks  # the graph's, but probes its signatures imply
        self.mark = mark
        self.counts = counts  # jobs with an action, jobs up to date (as a run that decides them counts)
        # The signatures, in two arrays (one read, compared whole): size,
        # mtime_ns and ctime_ns of each path, and its inode (unsigned).
        self.paths = paths
        self.numbers = numbers
        self.inodes = inodes
        self.logs = logs
        self.sources = sources  # job id -> the files its action reads (its script)
        self.racy: dict[str, str] = {}  # path -> the hash decided with, of a file hashed too soon after a change
        self.settled = False  # (observe vouched for a racy file by its hash: see save_settled)
        self._fields: list = []
        self.observed = False
        self._known: set[str] | None = None
        self.changed: set[str] = set()  # paths not as stamped, or rewritten in this run (observe)
        self._index: dict[str, int] | None = None

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
            _, graph, checks, mark, counts, joined, numbers, inodes, logs, sources, racy = fields
            paths = joined.split("\0") if joined else []
            numbers, inodes = array("q", numbers), array("Q", inodes)
            if len(numbers) != 3 * len(paths) or len(inodes) != len(paths):
                return None
            stamp = cls(basis_, graph, checks, mark, tuple(counts), paths, numbers, inodes, logs, sources)
            stamp.racy, stamp._fields = racy, list(fields)
            return stamp
        except (ValueError, EOFError, TypeError, IndexError):
            return None

    def observe(self) -> None:
        """Stat every file the stamp names, now (the run's view of them: a
        job that runs later rewrites its outputs, ``will_change``)."""
        numbers, inodes = signatures(self.paths)
        if self.racy:
            self._settle(numbers, inodes)
        if numbers == self.numbers and inodes == self.inodes:
            self.changed = set()
        else:
            old = self.numbers
            self.changed = {path for i, path in enumerate(self.paths)
                            if numbers[3 * i] != old[3 * i] or numbers[3 * i + 1] != old[3 * i + 1]
                            or numbers[3 * i + 2] != old[3 * i + 2] or inodes[i] != self.inodes[i]}
        self.observed = True

    @property
    def known(self) -> set[str]:
        """The paths it names (for vouching; a proved run needs none)."""
        if self._known is None:
            self._known = set(self.paths)
        return self._known

    def _settle(self, numbers: array, inodes: array) -> None:
        """A file hashed too soon after it changed has no signature to vouch
        with; if its contents now hash as they did, and it changed long
        enough ago, its signature now vouches for it (big outputs, which
        a run does not hash again as it ends: ``Hasher.settle``)."""
        for i, path in enumerate(self.paths):
            if path not in self.racy or self.numbers[3 * i] != _UNSURE:
                continue
            try:
                st = os.stat(path)
                if not (stat.S_ISREG(st.st_mode) and settled(st) and file_digest(path) == self.racy[path]):
                    continue
                if (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) != (
                        numbers[3 * i], numbers[3 * i + 1], inodes[i], numbers[3 * i + 2]):
                    continue  # (changed since it was looked at)
            except OSError:
                continue
            self.numbers[3 * i : 3 * i + 3] = numbers[3 * i : 3 * i + 3]
            self.inodes[i] = inodes[i]
            del self.racy[path]
            self.settled = True

    def save_settled(self, directory: str) -> None:
        """Keep what ``observe`` settled, for the next run (a proved run
        writes nothing else)."""
        if self.settled and self._fields:
            fields = self._fields
            fields[6], fields[7], fields[10] = self.numbers.tobytes(), self.inodes.tobytes(), self.racy
            cachefile.write(os.path.join(directory, FILE), _NAME, marshal.dumps(tuple(fields)))
            self.settled = False

    def holds(self, checks_hold: Callable[[tuple], bool]) -> bool:
        """Whether every job is still up to date: nothing ``observe`` saw has
        changed, ``checks_hold(checks)`` says the graph's checks hold, and
        every log is there. (The store's mark is the caller's to compare.)"""
        return not self.changed and checks_hold(self.checks) and all(os.path.lexists(log) for log in self.logs)

    def vouches(self, job: Job) -> bool:
        """Whether ``job`` is still up to date as far as the stamp can tell:
        each of its files as stamped when observed and not rewritten since
        (``will_change``), its logs there. Only for a run of the stamped
        graph and store."""
        if not self.observed:
            return False
        known, changed = self.known, self.changed
        inputs, outputs = job.inputs, job.outputs
        if not (changed.isdisjoint(inputs) and changed.isdisjoint(outputs)
                and known.issuperset(inputs) and known.issuperset(outputs)):
            return False
        read = self.sources.get(job.id)
        if read and not (changed.isdisjoint(read) and known.issuperset(read)):
            return False
        return all(os.path.lexists(log) for log in job.logs)

    def reach(self, jobs: list[Job]) -> list[Job]:
        """The jobs of ``jobs`` (the stamped graph's, dependencies first) a
        run must still decide: those with a file not as stamped (or a log
        gone), and every job after one of them (it may run again). Each
        other job is up to date, as ``vouches`` would say: its files are as
        stamped (the stamp was written for these very jobs: each file has
        its signature), and nothing before it runs."""
        changed, sources, lexists = self.changed, self.sources, os.path.lexists
        reached: set[Job] = set()
        for job in jobs:
            if ((reached and not reached.isdisjoint(job.deps))
                    or not (changed.isdisjoint(job.inputs) and changed.isdisjoint(job.outputs))
                    or (job.id in sources and not changed.isdisjoint(sources[job.id]))
                    or not all(lexists(log) for log in job.logs)):
                reached.add(job)
        return [job for job in jobs if job in reached] if reached else []

    def left_out(self, planned: list[Job]) -> tuple[int, int]:
        """The ``counts`` of the stamped jobs that are not in ``planned``."""
        total, up_to_date = self.counts
        acting = sum(1 for job in planned if job.rule.action is not None)
        return total - acting, up_to_date - sum(1 for job in planned if job.rule.action is not None or job.outputs)

    def seen(self, path: str) -> bool | None:
        """Whether ``path`` existed when ``observe`` looked, if it looked and
        found it as stamped (None: it cannot say; ask the file system)."""
        sig = self.kept(path)
        return None if sig == NOT_A_FILE else sig is not None

    def will_change(self, paths: Iterable[str]) -> None:
        """A job that writes ``paths`` runs: what reads them is decided."""
        self.changed.update(paths)

    @property
    def index(self) -> dict[str, int]:
        """Where each path's signature is."""
        if self._index is None:
            self._index = {p: i for i, p in enumerate(self.paths)}
        return self._index

    def kept(self, path: str):
        """The signature of a file the stamp vouched for in this run (else
        NOT_A_FILE), for the next stamp."""
        if not self.observed or path not in self.known or path in self.changed:
            return NOT_A_FILE
        i, n = self.index[path], self.numbers
        return _signature(n[3 * i], n[3 * i + 1], self.inodes[i], n[3 * i + 2])

    # writing ----------------------------------------------------------------------------

    @staticmethod
    def write(directory: str, basis_: str, graph: str | None, checks: tuple, mark: str,
              jobs: Iterable[Job], hasher: Hasher, old: Stamp | None,
              sources: Callable[[Job], tuple[str, ...] | None]) -> bool:
        """Keep a stamp for ``jobs``, every one up to date now: the
        signatures the run decided with (``_decided``: from what ``hasher``
        hashed, and from the ``old`` stamp for what it vouched with), and
        the files each job's action reads (``sources``; None: not known, so
        no stamp). False if there is nothing it could vouch for. Best
        effort, as every cache: one that cannot be written costs the next
        run time."""
        files: dict = {}
        racy_digests: dict[str, str] = {}
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
                    files[path], racy = _decided(path, hasher, old)
                    if racy is not None:
                        racy_digests[path] = racy
            logs.extend(job.logs)
            total += job.rule.action is not None
            up_to_date += job.rule.action is not None or bool(job.outputs)
        if not all(os.path.lexists(log) for log in logs):
            return False
        numbers, inodes = array("q"), array("Q")
        for sig in files.values():
            size, mtime, inode, ctime = _numbers(sig)
            numbers.extend((size, mtime, ctime))
            inodes.append(inode)
        probes, *rest = checks
        if any(p in files and (files[p] is not None) != existed for p, existed in probes.items()):
            return False  # (a file came or went between inferring the graph and deciding with it)
        probes = {p: existed for p, existed in probes.items() if p not in files}  # (the others: by signature)
        try:
            payload = marshal.dumps((basis_, graph, (probes, *rest), mark, (total, up_to_date), "\0".join(files),
                                     numbers.tobytes(), inodes.tobytes(), logs, job_sources, racy_digests))
        except ValueError:  # (a value marshal cannot keep: no stamp)
            return False
        return cachefile.write(os.path.join(directory, FILE), _NAME, payload)


    def rewrite(self, directory: str, mark: str, jobs: Iterable[Job], hasher: Hasher,
                sources: Callable[[Job], tuple[str, ...] | None], probes: dict[str, bool]) -> bool:
        """Keep this stamp for the next run, after a run that decided only
        ``jobs`` (``reach``) and ended with every one up to date: their files
        get the signatures the run decided with (as ``write``), the others
        keep theirs, and the store's ``mark`` is the new one. The graph's
        ``probes`` must agree with what the run found. False (and nothing
        written) if it cannot be kept so: a file it has no place for."""
        if not self._fields:
            return False
        index, numbers, inodes = self.index, array("q", self.numbers), array("Q", self.inodes)
        racy_digests, job_sources = dict(self.racy), dict(self.sources)
        seen: set[str] = set()
        for job in jobs:
            read = sources(job)
            if read is None or (job.rule.action is not None and not job.outputs):
                return False
            if read:
                job_sources[job.id] = read
            else:
                job_sources.pop(job.id, None)
            for path in chain(job.inputs, job.outputs, read):
                if path in seen:
                    continue
                seen.add(path)
                i = index.get(path)
                sig, racy = _decided(path, hasher, self)
                if i is None or (path in probes and (sig is not None) != probes[path]):
                    return False
                size, mtime, inode, ctime = _numbers(sig)
                numbers[3 * i], numbers[3 * i + 1], numbers[3 * i + 2], inodes[i] = size, mtime, ctime, inode
                if racy is None:
                    racy_digests.pop(path, None)
                else:
                    racy_digests[path] = racy
            if not all(os.path.lexists(log) for log in job.logs):
                return False
        fields = list(self._fields)
        fields[3], fields[6], fields[7], fields[9], fields[10] = (
            mark, numbers.tobytes(), inodes.tobytes(), job_sources, racy_digests)
        return cachefile.write(os.path.join(directory, FILE), _NAME, marshal.dumps(tuple(fields)))


def _decided(path: str, hasher: Hasher, old: Stamp | None) -> tuple[object, str | None]:
    """The signature this run decided with ``path`` at, and, for a file
    hashed too soon after it changed (no signature to vouch with), the hash
    it decided with. What the old stamp vouched with and what a job of this
    run hashed must agree: a file changed mid-run vouches for nothing."""
    kept = old.kept(path) if old is not None else NOT_A_FILE
    if path not in hasher.memo:
        return kept, None
    decided = hasher.decided_signature(path)
    if kept == NOT_A_FILE:
        return decided, hasher.racy_digest(path)
    return (decided if decided == kept else NOT_A_FILE), None  # (its contents when vouched with are not known)


def signatures(paths: list[str]) -> tuple[array, array]:
    """The signatures of ``paths`` as a stamp keeps them. A stat costs a few
    microseconds, mostly in the kernel, and threads do not overlap them (the
    interpreter's lock): for many paths, a forked helper stats the second
    half meanwhile (unless threads run, which a fork must not copy)."""
    half = len(paths) // 2
    if half < _HELPED or (os.cpu_count() or 1) < 2 or threading.active_count() > 1:
        return _stat(paths)
    try:
        read, write = os.pipe()
        pid = os.fork()
    except OSError:
        return _stat(paths)
    if pid == 0:  # the helper: stat, send, exit (nothing of the parent's runs here)
        try:
            os.close(read)
            numbers, inodes = _stat(paths[half:])
            with os.fdopen(write, "wb") as out:
                out.write(numbers.tobytes() + inodes.tobytes())
        finally:
            os._exit(0)
    os.close(write)
    numbers, inodes = _stat(paths[:half])
    with os.fdopen(read, "rb") as given:
        data = given.read()
    os.waitpid(pid, 0)
    rest = len(paths) - half
    if len(data) != 32 * rest:  # (the helper failed: stat that half here)
        more_numbers, more_inodes = _stat(paths[half:])
    else:
        more_numbers, more_inodes = array("q", data[: 24 * rest]), array("Q", data[24 * rest :])
    numbers.extend(more_numbers)
    inodes.extend(more_inodes)
    return numbers, inodes


_HELPED = 20_000  # paths in each half at least, for a helper to pay


def _stat(paths: list[str]) -> tuple[array, array]:
    numbers, inodes = array("q"), array("Q")
    stat, add, add_inode = os.stat, numbers.extend, inodes.append
    for path in paths:
        try:
            st = stat(path)
        except (FileNotFoundError, NotADirectoryError):
            add(_MISSING)
            add_inode(0)
            continue
        except OSError:  # (unreadable, a loop of links: deciding the job says what is wrong)
            add((_UNSURE, _UNSURE, _UNSURE))
            add_inode(0)
            continue
        add((st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        add_inode(st.st_ino)
    return numbers, inodes


# How a missing file and one the stamp cannot vouch for are kept (no file
# has a negative size).
_MISSING = (-1, -1, -1)
_UNSURE = -2


def _numbers(sig) -> tuple[int, int, int, int]:
    if sig is None:
        return -1, -1, 0, -1
    if sig == NOT_A_FILE:
        return _UNSURE, _UNSURE, 0, _UNSURE
    return sig


def _signature(size: int, mtime: int, inode: int, ctime: int):
    if size == -1:
        return None
    if size == _UNSURE:
        return NOT_A_FILE
    return size, mtime, inode, ctime
