"""Lineage: walk flow's records upstream or downstream from one file.

Upstream, a file leads to the job recorded as making it (``outputs``), and
that job to the inputs it last ran with (its ``parts`` in ``jobs``); an
input that is itself a recorded output leads on to its job, any other is a
source file, shown with the hash the job that read it recorded. Downstream, a
file leads to the jobs whose recorded inputs hold it (a reverse index of
every job's parts, built once), and their outputs on to the jobs that read
them. Each job is visited once (an ancestor shared by two jobs, or a cycle a
hand-edited store might hold), by a loop rather than recursion, so that a
history of 100,000 jobs costs linear time. Each output and source is hashed
now (through the stat cache) to say whether it is still what was recorded.

Only the records are read: a job's command is its recorded one, or None
(``commands/lineage.py`` may work it out from the Flowfile). Nothing here
prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..load.model import job_id
from .hashing import Hasher
from .schema import db_name, name_of
from .state import OutputRecord, State

# Whether a file is still what the records say: the same content, changed
# since, gone (a temp() output flow removed after use is gone too), or
# unreadable (a FIFO where a file was, a link that leads nowhere).
OK, CHANGED, MISSING, UNREADABLE = "ok", "changed", "missing", "unreadable"
# What a job records for an input instead of a hash: it did not exist, or
# it is ancient() (its content was not looked at).
NO_HASH = ("missing", "ancient")
_BATCH = 500  # job ids a query reads at once (SQLite takes up to 32,766 parameters)
_READ_ALL_AFTER = 2000  # rows read by id beyond which all are read in one pass (faster by far)


@dataclass
class FileEntry:
    """An output as recorded (``hash``: its hash when made), or a source
    file (``hash``: what the first job found reading it recorded)."""

    path: str
    hash: str | None
    status: str
    temp: bool = False


@dataclass
class InputEntry:
    """An input as a job recorded it: ``hash`` is a hash, "missing" or
    "ancient"; ``made_by`` the job recorded as making it, None for a source;
    ``status`` whether the file is still what the job read."""

    path: str
    hash: str
    made_by: str | None
    status: str


@dataclass
class JobEntry:
    id: str
    rule: str
    wildcards: dict[str, str]
    command: str | None  # as recorded (``flow run -p``'s), None if not
    key: str
    finished: float | None  # Unix time
    outputs: list[FileEntry]
    inputs: list[InputEntry] | None  # None: not recorded (a store salvaged from damage keeps outputs only)

    @property
    def label(self) -> str:
        """How flow names a job to people (``Job.label``): ``count (sample=a)``."""
        if not self.wildcards:
            return self.rule
        return f"{self.rule} ({', '.join(f'{k}={v}' for k, v in self.wildcards.items())})"


@dataclass
class Lineage:
    file: FileEntry  # the file asked about
    made_by: str | None  # the job recorded as making it; None for a source
    downstream: bool
    maker: JobEntry | None = None  # that job
    jobs: dict[str, JobEntry] = field(default_factory=dict)  # id -> job, in the order the walk reached them
    sources: dict[str, FileEntry] = field(default_factory=dict)  # upstream: the source files; downstream: the file if a source


class NotRecorded(LookupError):
    """No record names the file: no job flow ran made or read it."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


class JobRecords:
    """Flow's records in a store opened read-only, walked from a file."""

    def __init__(self, state: State):
        self.db = state.db
        self.outputs = state.outputs
        self.hasher = Hasher(dict(state.files))  # (a copy: nothing learned here is kept)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(jobs)")}
        self._command = "command" if "command" in columns else "NULL"  # (a store of an older flow has none)
        self._by_job: dict[str, list[str]] | None = None
        self._consumers: dict[str, list[str]] | None = None
        self._rows: dict[str, tuple] | None = None  # every job's row, once read
        self._asked = 0  # rows asked for by id
        self._journaled = state.unread_jobs()  # (newer than the store's: a killed run's records)

    # walks ---------------------------------------------------------------------------

    def upstream(self, path: str) -> Lineage:
        """What ``path`` derives from: its job, that job's inputs, and theirs."""
        rec = self.outputs.get(path)
        if rec is None:  # a source (or nothing flow knows)
            return self._source_only(path, downstream=False)
        lineage = Lineage(FileEntry(path, rec.hash, self._output_status(path, rec), rec.temp), rec.job, False)
        for job in self._breadth_first([rec.job], lambda job: (i.made_by for i in job.inputs or () if i.made_by)):
            lineage.jobs[job.id] = job
            for inp in job.inputs or ():
                if inp.made_by is None and inp.path not in lineage.sources:
                    lineage.sources[inp.path] = self._source(inp.path, inp.hash)
        lineage.maker = lineage.jobs[rec.job]
        return lineage

    def downstream(self, path: str) -> Lineage:
        """What derives from ``path``: the jobs that read it, their outputs,
        the jobs that read those, and so on."""
        consumers = self.consumers()
        rec = self.outputs.get(path)
        if rec is None:
            lineage = self._source_only(path, downstream=True)
        else:
            lineage = Lineage(FileEntry(path, rec.hash, self._output_status(path, rec), rec.temp), rec.job, True,
                              self.job(rec.job))
        for job in self._breadth_first(consumers.get(path, []),
                                       lambda job: (c for o in job.outputs for c in consumers.get(o.path, ()))):
            lineage.jobs[job.id] = job
        return lineage

    def _breadth_first(self, first: list[str], following: Callable[[JobEntry], Iterable[str]]) -> Iterator[JobEntry]:
        """Each job from ``first`` on, once, nearest first; the rows of a
        whole level are read together."""
        seen = set(first)
        level = list(dict.fromkeys(first))
        while level:
            rows = self._rows_of(level)
            after: list[str] = []
            for jid in level:
                job = self._entry(jid, rows.get(jid))
                yield job
                for nxt in following(job):
                    if nxt not in seen:
                        seen.add(nxt)
                        after.append(nxt)
            level = after

    def _source_only(self, path: str, downstream: bool) -> Lineage:
        """A file no job is recorded as making: a source, if a job read it."""
        first = next(iter(self.consumers().get(path, ())), None)
        if first is None:
            raise NotRecorded(path)
        recorded = next(i.hash for i in self.job(first).inputs or () if i.path == path)
        source = self._source(path, recorded)
        lineage = Lineage(source, None, downstream)
        lineage.sources[path] = source
        return lineage

    # one job -------------------------------------------------------------------------

    def job(self, jid: str) -> JobEntry:
        """A job as recorded: its row of ``jobs``, and its outputs as ``outputs`` records them."""
        return self._entry(jid, self._rows_of([jid]).get(jid))

    def _rows_of(self, ids: list[str]) -> dict[str, tuple]:
        """The rows of ``jobs`` of these ids (rule, key, parts, finished, command):
        read by id, until so many were that reading all at once costs less."""
        self._asked += len(ids)
        if self._rows is None and self._asked > _READ_ALL_AFTER:
            self._rows = dict(self._all_jobs())
        if self._rows is not None:
            return {jid: self._rows[jid] for jid in ids if jid in self._rows}
        rows = {}
        for i in range(0, len(ids), _BATCH):
            batch = [db_name(jid) for jid in ids[i:i + _BATCH]]
            query = f"SELECT id, rule, key, parts, finished, {self._command} FROM jobs WHERE id IN ({','.join('?' * len(batch))})"
            for jid, *row in self.db.execute(query, batch):
                rows[name_of(jid)] = tuple(row)
        rows.update((jid, self._journaled[jid]) for jid in ids if jid in self._journaled)
        return rows

    def _entry(self, jid: str, row: tuple | None) -> JobEntry:
        paths = self.outputs_of().get(jid, [])
        if row is None:  # outputs recorded without their job (a store salvaged from damage)
            rule = jid.partition("[")[0]
            key = self.outputs[paths[0]].key if paths else ""
            return JobEntry(jid, rule, wildcards_of(jid, rule), None, key, None, self._outputs(paths), None)
        rule, key, parts_text, finished, command = row
        parts = json.loads(parts_text)
        if len(paths) > 1:  # as the rule names them, then its logs
            order = {p: i for i, p in enumerate(parts.get("outputs", ()))}
            paths = sorted(paths, key=lambda p: order.get(p, len(order)))
        inputs = []
        for p, h in parts.get("inputs", ()):
            rec = self.outputs.get(p)
            maker = rec.job if rec is not None and rec.job != jid else None
            inputs.append(InputEntry(p, h, maker, self._input_status(p, h)))
        return JobEntry(jid, rule, wildcards_of(jid, rule), command, key, finished, self._outputs(paths), inputs)

    def _outputs(self, paths: list[str]) -> list[FileEntry]:
        out = []
        for p in paths:
            rec = self.outputs[p]
            out.append(FileEntry(p, rec.hash, self._output_status(p, rec), rec.temp))
        return out

    # indexes (each built once, when first needed) ----------------------------------

    def outputs_of(self) -> dict[str, list[str]]:
        """job id -> the paths recorded as its outputs."""
        if self._by_job is None:
            self._by_job = {}
            for path, rec in self.outputs.items():
                self._by_job.setdefault(rec.job, []).append(path)
        return self._by_job

    def consumers(self) -> dict[str, list[str]]:
        """path -> the jobs whose recorded inputs hold it: one pass over every
        job's row (which are kept, so that no job is read twice). A job none
        of whose outputs is recorded as its any more (remade by another rule,
        or removed by ``flow clean``) is history, not lineage, and is left out."""
        if self._consumers is None:
            by_job = self.outputs_of()
            if self._rows is None:
                self._rows = dict(self._all_jobs())
            self._consumers = {}
            for jid, row in self._rows.items():
                parts = json.loads(row[2])
                if parts.get("outputs") and jid not in by_job:
                    continue
                for p, _h in parts.get("inputs", ()):
                    self._consumers.setdefault(p, []).append(jid)
        return self._consumers

    def _all_jobs(self) -> Iterator[tuple[str, tuple]]:
        for jid, *row in self.db.execute(f"SELECT id, rule, key, parts, finished, {self._command} FROM jobs"):
            if name_of(jid) not in self._journaled:
                yield name_of(jid), tuple(row)
        yield from self._journaled.items()

    # the files now -------------------------------------------------------------------

    def _output_status(self, path: str, rec: OutputRecord) -> str:
        digest = self._digest(path)
        if digest is None or digest == UNREADABLE:
            return digest or MISSING
        return OK if digest == rec.hash else CHANGED

    def _source(self, path: str, recorded: str) -> FileEntry:
        return FileEntry(path, recorded, self._input_status(path, recorded))

    def _input_status(self, path: str, recorded: str) -> str:
        digest = self._digest(path)
        if digest is None or digest == UNREADABLE:
            return digest or MISSING
        if recorded in NO_HASH:  # ancient(): its content never counted; "missing": it did not exist then
            return OK if recorded == "ancient" else CHANGED
        return OK if digest == recorded else CHANGED

    def _digest(self, path: str) -> str | None:
        try:
            return self.hasher.digest(path)
        except OSError:  # (SpecialFileError is one)
            return UNREADABLE


def wildcards_of(jid: str, rule: str) -> dict[str, str]:
    """The wildcard values a job id (``model.job_id``) holds: ``rule[k=v,...]``
    read back, its escapes undone; {} if the id is not one of that form."""
    if not (jid.startswith(rule + "[") and jid.endswith("]")):
        return {}
    body = jid[len(rule) + 1:-1]
    if "\\" not in body:  # nothing escaped (most ids): no value holds , = ]
        pairs = [pair.partition("=") for pair in body.split(",")]
        whole = body.count("=") == len(pairs) and "]" not in body
        return {k: v for k, _, v in pairs} if whole else {}
    values: dict[str, str] = {}
    name: str | None = None
    part: list[str] = []
    escaped = False
    for c in body:
        if escaped:
            part.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "=" and name is None:
            name, part = "".join(part), []
        elif c == ",":
            values["" if name is None else name] = "".join(part)
            name, part = None, []
        else:
            part.append(c)
    values["" if name is None else name] = "".join(part)
    return values if job_id(rule, values) == jid else {}
