"""The state store's tables (``state.py`` keeps them), how a store written
by an older flow is brought up to date, and how names are stored.

A column added after its table was first written is listed in ``COLUMNS``
and added when a store is opened; an older flow reading a newer store
ignores it (it names the columns it writes).
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import NamedTuple

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, hash TEXT, ctime_ns INTEGER);
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT PRIMARY KEY, job TEXT NOT NULL, key TEXT NOT NULL, hash TEXT, temp INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, key TEXT NOT NULL, parts TEXT NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY, job TEXT NOT NULL, rule TEXT NOT NULL, wildcards TEXT NOT NULL,
    started REAL NOT NULL, ended REAL NOT NULL, status INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, started REAL NOT NULL, ended REAL, command TEXT, targets TEXT, cores INTEGER,
    total INTEGER, ran INTEGER, failed INTEGER, up_to_date INTEGER, outcome TEXT, log TEXT);
"""
# Columns added after their table was first written: (table, column, type).
COLUMNS = (
    ("files", "ctime_ns", "INTEGER"),
    ("jobs", "command", "TEXT"),
    ("attempts", "run", "TEXT"),
    ("attempts", "attempt", "INTEGER"),
    ("attempts", "cpu", "REAL"),
    ("attempts", "rss_kb", "INTEGER"),
    ("attempts", "bytes_in", "INTEGER"),
    ("attempts", "bytes_out", "INTEGER"),
    ("attempts", "reason", "TEXT"),
)
INDEXES = """
CREATE INDEX IF NOT EXISTS attempts_by_run ON attempts (run);
CREATE INDEX IF NOT EXISTS attempts_by_rule ON attempts (rule, ended);
"""
# Every change of an output record gives the store a new random generation,
# whoever makes it (the triggers live in the store, so an older flow's
# writes count too): while it is the one a stamp (``decide.stamp``) was
# written against, so are the records. (Random, not counted: a store that
# lost its last commits in a power cut must not count up to an old value.)
GENERATION = """
INSERT OR IGNORE INTO meta VALUES ('generation', lower(hex(randomblob(16))));
CREATE TRIGGER IF NOT EXISTS outputs_inserted AFTER INSERT ON outputs BEGIN
    UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'generation'; END;
CREATE TRIGGER IF NOT EXISTS outputs_updated AFTER UPDATE ON outputs BEGIN
    UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'generation'; END;
CREATE TRIGGER IF NOT EXISTS outputs_deleted AFTER DELETE ON outputs BEGIN
    UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'generation'; END;
"""
ATTEMPT_COLUMNS = "job, rule, wildcards, started, ended, status, run, attempt, cpu, rss_kb, bytes_in, bytes_out, reason"
PLACES = ",".join("?" * len(ATTEMPT_COLUMNS.split(",")))


class AttemptRecord(NamedTuple):
    """One attempt of a job, as the history keeps it (None: not measured)."""

    job: str
    rule: str
    wildcards: dict[str, str]
    started: float  # Unix time
    ended: float
    status: int  # 0: succeeded
    run: str | None = None  # the run it belonged to (``runs.id``)
    number: int = 1  # the how-manieth attempt of the job in its run
    cpu: float | None = None  # CPU seconds of its processes
    rss_kb: int | None = None  # peak resident memory
    bytes_in: int | None = None  # the sizes of its inputs
    bytes_out: int | None = None  # the sizes of its outputs
    reason: str | None = None  # why it ran

    def row(self) -> tuple:
        return (db_name(self.job), self.rule, json.dumps(self.wildcards), self.started, self.ended, self.status,
                self.run, self.number, self.cpu, self.rss_kb, self.bytes_in, self.bytes_out, shown(self.reason))


def has_ctime(db: sqlite3.Connection) -> bool:
    """Whether the stat cache has ctime_ns (a store of an older flow has not)."""
    return any(column[1] == "ctime_ns" for column in db.execute("PRAGMA table_info(files)"))


def add_columns(db: sqlite3.Connection) -> None:
    """Add to a store written by an older flow the columns it lacks."""
    have: dict[str, set[str]] = {}
    for table, column, kind in COLUMNS:
        if table not in have:
            have[table] = {c[1] for c in db.execute(f"PRAGMA table_info({table})")}
        if column not in have[table]:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def db_name(name: str) -> str | bytes:
    """A path or job id as SQLite can store it: text, or, for a file name
    that is not UTF-8 (Python keeps its bytes as surrogates), those bytes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name)


def shown(text: str | None) -> str | None:
    """Text kept to be shown (a reason, a command) as SQLite can store it: a
    file name's bytes that are not UTF-8 written as ``\\xe9``."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def name_of(value: str | bytes) -> str:
    return value if isinstance(value, str) else os.fsdecode(value)
