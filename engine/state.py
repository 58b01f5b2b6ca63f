"""The state store, ``.flow/state.db``: what flow knows about files it has
hashed and outputs it has made.

SQLite in WAL mode. Each finished job is one transaction that records its
outputs, its key and its attempt together, so a crash loses at most the jobs
that were still running, and those were never recorded: their outputs then
count as out of date. Tables:

- ``files``: stat cache (size, mtime_ns, inode) -> content hash, so an
  unchanged file is never read twice;
- ``outputs``: per output path, the job that made it, that job's key and the
  output's hash when made; the verifying trace of the rebuilder;
- ``jobs``: per job, its key and the parts of the key, to explain reruns;
- ``attempts``: one row per job run (rule, wildcards, start, end, status).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass

from .errors import UserError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, hash TEXT);
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT PRIMARY KEY, job TEXT NOT NULL, key TEXT NOT NULL, hash TEXT, temp INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, key TEXT NOT NULL, parts TEXT NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY, job TEXT NOT NULL, rule TEXT NOT NULL, wildcards TEXT NOT NULL,
    started REAL NOT NULL, ended REAL NOT NULL, status INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OutputRecord:
    job: str
    key: str
    hash: str | None
    temp: bool


FileStat = tuple[int, int, int, str]  # size, mtime_ns, inode, hash


class State:
    def __init__(self, directory: str = ".flow", readonly: bool = False):
        self.directory = directory
        self.path = os.path.join(directory, "state.db")
        self.readonly = readonly
        self.warnings: list[str] = []
        self.files: dict[str, FileStat] = {}
        self.outputs: dict[str, OutputRecord] = {}
        if readonly and not os.path.exists(self.path):
            self.db = sqlite3.connect(":memory:", isolation_level=None)
            self.db.executescript(_SCHEMA)
        else:
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create {self.directory}/: {e.strerror}") from None
        try:
            return self._connect()
        except sqlite3.OperationalError as e:  # permissions, a full disk, a lock: not damage
            raise UserError(f"cannot open {self.path}: {e}",
                            "Check that .flow/ and its files are readable and writable by you.") from None
        except sqlite3.DatabaseError as e:  # not a database, malformed: damage
            aside = f"{self.path}.corrupt-{int(time.time())}"
            try:
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(self.path + suffix):
                        os.replace(self.path + suffix, aside + suffix)
            except OSError as moved:
                raise UserError(f"{self.path} is damaged ({e}) and cannot be moved aside: {moved.strerror}",
                                "Remove .flow/ to start over (outputs will count as not made by flow).") from None
            self.warnings.append(
                f"{self.path} was damaged ({e}); it was moved to {aside} and flow starts with an "
                "empty state: existing outputs count as not made by flow and will be rebuilt "
                "(or use `flow run --touch`)."
            )
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        """Open the store and load the stat cache and output records (reading
        every page, so that damage anywhere shows here rather than mid-run)."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise UserError(
                f"{self.path} was written by a newer flow (state version {row[0]}, this flow knows {SCHEMA_VERSION})",
                "Upgrade flow, or remove .flow/ to start over (outputs will count as not made by flow).",
            )
        self.files = {
            p: (s, m, i, h) for p, s, m, i, h in db.execute("SELECT path, size, mtime_ns, inode, hash FROM files")
        }
        self.outputs = {
            p: OutputRecord(j, k, h, bool(t))
            for p, j, k, h, t in db.execute("SELECT path, job, key, hash, temp FROM outputs")
        }
        return db

    # reads --------------------------------------------------------------------

    def job_parts(self, job_id: str) -> dict | None:
        row = self.db.execute("SELECT parts FROM jobs WHERE id=?", (job_id,)).fetchone()
        return json.loads(row[0]) if row else None

    # writes -------------------------------------------------------------------

    def record_job(
        self,
        job_id: str,
        rule: str,
        wildcards: dict[str, str],
        key: str,
        parts: dict,
        outputs: list[tuple[str, str | None, bool]],
        stats: dict[str, FileStat],
        started: float,
        ended: float,
    ) -> None:
        """Record a finished job in one transaction."""
        if self.readonly:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO outputs (path, job, key, hash, temp) VALUES (?,?,?,?,?)",
                [(p, job_id, key, h, int(t)) for p, h, t in outputs],
            )
            db.execute(
                "INSERT OR REPLACE INTO jobs (id, rule, key, parts, finished) VALUES (?,?,?,?,?)",
                (job_id, rule, key, json.dumps(parts), ended),
            )
            db.execute(
                "INSERT INTO attempts (job, rule, wildcards, started, ended, status) VALUES (?,?,?,?,?,0)",
                (job_id, rule, json.dumps(wildcards), started, ended),
            )
            self._write_stats(db, stats)
        for p, h, t in outputs:
            self.outputs[p] = OutputRecord(job_id, key, h, t)

    def record_failure(self, job_id: str, rule: str, wildcards: dict[str, str],
                       started: float, ended: float, status: int) -> None:
        if self.readonly:
            return
        with self._transaction() as db:
            db.execute(
                "INSERT INTO attempts (job, rule, wildcards, started, ended, status) VALUES (?,?,?,?,?,?)",
                (job_id, rule, json.dumps(wildcards), started, ended, status),
            )

    def save_stats(self, stats: dict[str, FileStat]) -> None:
        """Store stat-cache entries learned while hashing (inputs, checks)."""
        if self.readonly or not stats:
            return
        with self._transaction() as db:
            self._write_stats(db, stats)

    def forget_outputs(self, paths: list[str]) -> None:
        if self.readonly:
            return
        with self._transaction() as db:
            db.executemany("DELETE FROM outputs WHERE path=?", [(p,) for p in paths])
            db.executemany("DELETE FROM files WHERE path=?", [(p,) for p in paths])
        for p in paths:
            self.outputs.pop(p, None)
            self.files.pop(p, None)

    def _write_stats(self, db: sqlite3.Connection, stats: dict[str, FileStat]) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, hash) VALUES (?,?,?,?,?)",
            [(p, *s) for p, s in stats.items()],
        )
        self.files.update(stats)

    def _transaction(self):
        return _Transaction(self.db, self.path)

    def close(self) -> None:
        self.db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection, path: str):
        self.db, self.path = db, path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise UserError(f"cannot write {self.path}: {e}") from None
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error as e:
                exc = e
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite already rolled back
        if isinstance(exc, sqlite3.Error):
            raise UserError(f"cannot write {self.path}: {exc}",
                            "Check that .flow/ is writable and the disk is not full; "
                            "the job was not recorded and will run again.") from None
