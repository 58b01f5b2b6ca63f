"""What the history says about past runs, read back: the runs, one run's job
attempts, per-rule statistics, and each rule's typical duration (for the
ETA). Read-only: ``flow history``, ``flow stats`` and ``flow report`` read
the store while a run may be writing it.

Percentiles are linearly interpolated between the two nearest durations,
as numpy's default (``percentile``). A run whose row says ``running`` but
that holds no lock ended without a word (kill -9, a power cut): it is shown
as ``killed``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass

from ..decide.schema import name_of
from ..errors import UserError
from .lock import RunLock


@dataclass(frozen=True)
class RunRow:
    number: int  # 1, 2, ...: how the user names a run (``flow history 12``)
    id: str
    started: float
    ended: float | None
    command: list[str]
    targets: list[str]
    cores: int | None
    total: int
    ran: int
    failed: int
    up_to_date: int
    outcome: str  # ok, failed, interrupted, running, killed
    log: str | None  # relative to .flow/

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


@dataclass(frozen=True)
class AttemptRow:
    job: str
    rule: str
    wildcards: dict[str, str]
    started: float
    ended: float
    status: int
    attempt: int
    cpu: float | None
    rss_kb: int | None
    bytes_in: int | None
    bytes_out: int | None
    reason: str | None

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def label(self) -> str:
        """How the job is named to people, as ``Job.label``: ``extract (year=2022)``."""
        if not self.wildcards:
            return self.rule
        return f"{self.rule} ({', '.join(f'{k}={v}' for k, v in self.wildcards.items())})"


@dataclass(frozen=True)
class RuleStats:
    rule: str
    runs: int  # attempts
    failures: int
    p50: float | None  # seconds, over the attempts that succeeded
    p95: float | None
    p99: float | None
    max: float | None
    mean_cpu: float | None
    peak_rss_kb: int | None
    bytes_in: int  # in all
    bytes_out: int

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


RECENT = 20_000  # attempts the ETA reads the rules' durations from
_DAMAGED = "If it is damaged, the next `flow run` moves it aside and starts a new one."
_RUN_COLUMNS = "rowid, id, started, ended, command, targets, cores, total, ran, failed, up_to_date, outcome, log"
_ATTEMPT_COLUMNS = ("job, rule, wildcards, started, ended, status, attempt, cpu, rss_kb, bytes_in, bytes_out, "
                    "reason")


class Records:
    """The history in a store, read without a lock."""

    def __init__(self, db: sqlite3.Connection, live_run: str | None = None):
        self.db = db
        self.live_run = live_run  # the run holding the lock now, if any

    @classmethod
    def open(cls, directory: str = ".flow") -> Records:
        """The history of the store in ``directory`` (none yet if it has no
        store), without loading the rest of the store."""
        path = os.path.join(directory, "state.db")
        if not os.path.isfile(path):
            return cls(sqlite3.connect(":memory:"))
        query = "mode=ro" if os.access(directory, os.W_OK) else "mode=ro&immutable=1"
        try:
            db = sqlite3.connect(f"file:{path}?{query}", uri=True, timeout=30)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            raise UserError(f"cannot read {path}: {e}", _DAMAGED) from None
        return cls(db, RunLock(directory).holder_run())

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            if "no such" in str(e):  # a store an older flow wrote: no history in it yet
                return []
            raise UserError(f"cannot read .flow/state.db: {e}") from None
        except sqlite3.DatabaseError as e:
            raise UserError(f"cannot read .flow/state.db: {e}", _DAMAGED) from None

    # runs --------------------------------------------------------------------------

    def runs(self, limit: int | None = None) -> list[RunRow]:
        """The last ``limit`` runs (all if None), the newest first."""
        rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY rowid DESC LIMIT ?",
                           (-1 if limit is None else limit,))
        return [self._run(row) for row in rows]

    def run(self, ref: str) -> RunRow:
        """A run by its number, ``last`` (or -1, -2: counting back), or a
        prefix of its id with a letter in it (digits alone are a number:
        a pruned run's number never finds another run); a UserError naming
        what there is otherwise."""
        ref = ref.strip()
        rows: list[tuple] = []
        if ref == "last" or (ref.startswith("-") and ref[1:].isdigit() and int(ref[1:]) > 0):
            back = 1 if ref == "last" else int(ref[1:])
            rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY rowid DESC LIMIT 1 OFFSET ?", (back - 1,))
        elif ref.isdigit():
            rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE rowid = ?", (int(ref),))
        if not rows and ref and not ref.isdigit() and all(c in "0123456789abcdef" for c in ref.lower()):
            rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id LIKE ? ORDER BY rowid DESC",
                               (ref.lower() + "%",))
            if len(rows) > 1:
                raise UserError(f"run {ref}: {len(rows)} runs have an id that starts so",
                                "Give more of the id, or the run's number from `flow history`.")
        if not rows:
            known = self._query("SELECT min(rowid), max(rowid) FROM runs")
            span = (f"The history holds runs {known[0][0]} to {known[0][1]}."
                    if known and known[0][0] is not None else "No run is recorded yet: `flow run` records one.")
            raise UserError(f"run {ref}: no such run in the history", f"{span} See `flow history`.")
        return self._run(rows[0])

    def _run(self, row: tuple) -> RunRow:
        number, run_id, started, ended, command, targets, cores, total, ran, failed, up, outcome, log = row
        if outcome == "running" and run_id != self.live_run:
            outcome = "killed"
        return RunRow(number, run_id, started, ended, _json_list(command), _json_list(targets), cores,
                      total or 0, ran or 0, failed or 0, up or 0, outcome or "unknown", log)

    # attempts ----------------------------------------------------------------------

    def attempts(self, run_id: str) -> list[AttemptRow]:
        """The job attempts of one run, in the order they started."""
        rows = self._query(f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE run = ? ORDER BY started, id", (run_id,))
        return [_attempt(row) for row in rows]

    def rule_stats(self, rule: str | None = None, since: float | None = None) -> list[RuleStats]:
        """Per rule (or for one), over the attempts that ended after ``since``:
        how many, how many failed, the successful ones' duration percentiles,
        mean CPU, peak memory and the bytes read and written."""
        where, args = ["1"], []
        if rule is not None:
            where.append("rule = ?")
            args.append(rule)
        if since is not None:
            where.append("ended >= ?")
            args.append(since)
        rows = self._query("SELECT rule, ended - started, status, cpu, rss_kb, bytes_in, bytes_out FROM attempts "
                           f"WHERE {' AND '.join(where)} ORDER BY rule", tuple(args))
        by_rule: dict[str, list[tuple]] = {}
        for row in rows:
            by_rule.setdefault(row[0], []).append(row)
        return [_stats(name, entries) for name, entries in sorted(by_rule.items())]

    def typical_seconds(self, per_rule: int = 50) -> dict[str, float]:
        """Each rule's median duration over its last ``per_rule`` successful
        attempts among the last ``RECENT`` attempts (one range of the
        primary key, however long the history): what the ETA expects a job
        of it to take."""
        rows = self._query("SELECT rule, ended - started FROM attempts WHERE status = 0 "
                           "AND id > (SELECT max(id) FROM attempts) - ? ORDER BY id DESC", (RECENT,))
        by_rule: dict[str, list[float]] = {}
        for rule, seconds in rows:
            kept = by_rule.setdefault(rule, [])
            if len(kept) < per_rule:
                kept.append(max(0.0, seconds))
        return {rule: percentile(sorted(values), 50) for rule, values in by_rule.items()}

    # outputs ------------------------------------------------------------------------

    def recorded_jobs(self) -> set[str]:
        """The ids of the jobs whose outputs the store holds as made by them
        (``flow report`` counts a job a run did not run as up to date by it)."""
        return {name_of(job) for (job,) in self._query("SELECT DISTINCT job FROM outputs")}


def percentile(ordered: list[float], p: float) -> float:
    """The ``p``-th percentile of sorted values, interpolated linearly."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _stats(rule: str, entries: list[tuple]) -> RuleStats:
    ok = sorted(max(0.0, e[1]) for e in entries if e[2] == 0)
    cpus = [e[3] for e in entries if e[3] is not None]
    rss = [e[4] for e in entries if e[4] is not None]

    def pick(p: float) -> float | None:
        return percentile(ok, p) if ok else None

    return RuleStats(rule, len(entries), sum(1 for e in entries if e[2] != 0), pick(50), pick(95), pick(99),
                     ok[-1] if ok else None, sum(cpus) / len(cpus) if cpus else None, max(rss) if rss else None,
                     sum(e[5] or 0 for e in entries), sum(e[6] or 0 for e in entries))


def _attempt(row: tuple) -> AttemptRow:
    job, rule, wildcards, started, ended, status, attempt, cpu, rss, b_in, b_out, reason = row
    return AttemptRow(name_of(job), rule, json.loads(wildcards or "{}"), started, ended, status, attempt or 1,
                      cpu, rss, b_in, b_out, reason)


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: a span back from now (``90m``, ``36h``, ``7d``, ``2w``) or
    a date (``2026-12-01``, ``2026-12-01T08:00``), as a Unix time."""
    now = time.time() if now is None else now
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    if text[-1:] in units:
        try:
            amount = float(text[:-1])
        except ValueError:
            amount = -1.0
        if amount >= 0 and math.isfinite(amount):
            return now - amount * units[text[-1]]
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return time.mktime(time.strptime(text, fmt))
        except ValueError:
            continue
    raise UserError(f"--since {text}: not a span or a date",
                    "Write a span back from now (30m, 12h, 7d, 2w) or a date (2026-12-01, 2026-12-01T08:00).")
