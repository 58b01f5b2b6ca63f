"""The state store, ``.flow/state.db``: what flow knows about files it has
hashed and outputs it has made.

SQLite in WAL mode. A finished job's record (its outputs, its key and its
attempt, all or nothing) is durable as soon as one append has put it in the
journal beside the store (``journal``: a transaction costs ten times an
append); the store takes records in by the batch, at most ``WAIT_SECONDS``
after they were made and before any other write or read of it, and a store
opened after a crash first takes in what the journal holds. So a crash loses
at most the jobs that were still running, and those were never recorded:
their outputs then count as out of date. Tables:

- ``files``: stat cache (size, mtime_ns, inode, ctime_ns) -> content hash,
  so an unchanged file is never read twice (rows of a store written before
  ctime_ns was added have none: they vouch for no file, which is read again);
- ``outputs``: per output path, the job that made it, that job's key and the
  output's hash when made; the verifying trace of the rebuilder;
- ``jobs``: per job, its key and the parts of the key, to explain reruns,
  and its command as ``-p`` shows it (for ``flow lineage``);
- ``attempts``: one row per job run: rule, wildcards, start, end, status,
  and what it used (``AttemptRecord``), written with the job's outputs;
- ``runs``: one row per ``flow run`` (``run.history`` writes and prunes it);
- ``meta``: the schema's version, the store's generation, which every
  change of an output record replaces (``mark``), the store's id and the
  number of the last journal entry it took in.

Columns added since a store was first written are added to it when it is
opened (``_COLUMNS``); an older flow reading a newer store ignores them.

Beside it, ``.flow/.gitignore`` keeps the directory out of git and, as it
outlives a deleted store, tells a store gone missing (said, as a damaged one
is) from a project's first run (silent).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ..errors import UserError
from .journal import Entry, Journal
from .schema import (
    ATTEMPT_COLUMNS,
    GENERATION,
    INDEXES,
    PLACES,
    SCHEMA,
    SCHEMA_VERSION,
    AttemptRecord,
    add_columns,
    db_name,
    has_ctime,
    name_of,
    shown,
)

_MARK = ".gitignore"
_MARK_TEXT = "# flow's state (flow made this file)\n*\n"
_STARTS_EMPTY = ("flow starts with an empty state: existing outputs count as not made by flow "
                 "and will be rebuilt (or use `flow run --touch`).")
# SQLite's primary result codes; a failing write of its shared memory file is
# an I/O error, which on a disk with less than NEARLY_FULL free is taken as full.
SQLITE_IOERR = 10
SQLITE_FULL = 13
NEARLY_FULL = 1 << 20
# Job records wait in the journal for the store (see record_job): at most so
# many, and so long.
BATCH = 256
WAIT_SECONDS = 0.2
# How a record's rows are written (a job's record, a salvage, the stat cache).
_PUT_OUTPUT = "INSERT OR REPLACE INTO outputs (path, job, key, hash, temp) VALUES (?,?,?,?,?)"
_PUT_JOB = "INSERT OR REPLACE INTO jobs (id, rule, key, parts, finished, command) VALUES (?,?,?,?,?,?)"
_PUT_FILE = "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, ctime_ns, hash) VALUES (?,?,?,?,?,?)"

class OutputRecord(NamedTuple):  # (a tuple: 100,000 of them load in a blink)
    job: str
    key: str
    hash: str | None
    temp: bool


# size, mtime_ns, (inode, ctime_ns), hash: the user can set the first two,
# the kernel alone the pair (no call sets ctime; every change of content does).
FileStat = tuple[int, int, tuple[int, int], str]


class State:
    def __init__(self, directory: str = ".flow", readonly: bool = False, rows: bool = True):
        """``rows=False``: leave the stat cache and the output records unread
        (a run a stamp proves has nothing to do needs neither; ``load_rows``)."""
        self.directory = directory
        self.path = os.path.join(directory, "state.db")
        self.readonly = readonly
        self.rows = rows
        self.warnings: list[str] = []
        # Where to say what went wrong with the store; the CLI points it at its reporter.
        self.warn: Callable[[str], None] = self.warnings.append
        self.files: dict[str, FileStat] = {}
        self.outputs: dict[str, OutputRecord] = {}
        self.journal = Journal(directory, like=self.path)
        self.pending: list[Entry] = []  # job records in the journal, not yet in the store
        self.seq = 0  # the last journal entry's number
        self.store_id = ""  # (a journal entry is for the store it was written for only)
        self._since = 0.0  # when the first pending record was made
        self._unread: list[Entry] = []  # (read-only: the entries a killed run left, not in the store)
        if os.path.lexists(self.path) and not os.path.isfile(self.path):
            raise UserError(f"{self.path} is not a regular file", "Remove it; flow makes a new store.")
        lost = self._lost()
        self.db = self._open_readonly() if readonly else self._open()
        if lost:
            self.warn(self._lost_text(lost))

    def _lost(self) -> str | None:
        """"missing" or "empty" if the store of a .flow/ that had one is gone;
        None for one in place, or none yet (a project's first run)."""
        if not os.path.lexists(self.path):
            return "missing" if os.path.exists(os.path.join(self.directory, _MARK)) else None
        return "empty" if os.path.getsize(self.path) == 0 else None

    def _lost_text(self, lost: str) -> str:
        if self.readonly:
            return (f"{self.path} is {lost}; existing outputs count as not made by flow: "
                    "`flow run` will rebuild them (or use `flow run --touch`).")
        return f"{self.path} is {lost}; {_STARTS_EMPTY}"

    def _open_readonly(self) -> sqlite3.Connection:
        """For ``run -n``: read the store as it is, change nothing (not even a
        damaged store, which the next real run moves aside), wait for no lock."""
        if os.path.exists(self.path):
            # A read-only .flow/ cannot hold the WAL's shared memory file: then read
            # the store file as it is (without what a running flow has not yet checkpointed).
            query = "mode=ro" if os.access(self.directory, os.W_OK) else "mode=ro&immutable=1"
            try:
                return self._load(sqlite3.connect(f"file:{self.path}?{query}", uri=True,
                                                  isolation_level=None, check_same_thread=False))
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e):  # a store without tables is an empty one
                    raise self._failure("read", e, ".") from None
            except sqlite3.DatabaseError as e:
                return self._damaged(e)
        return _empty()

    def _open(self) -> sqlite3.Connection:
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create {self.directory}/: {e.strerror}") from None
        self._match_sidecars()
        try:
            db = self._connect()
        except sqlite3.OperationalError as e:  # permissions, a full disk, a lock: not damage
            raise self._failure("open", e, ".") from None
        except sqlite3.DatabaseError as e:  # not a database, malformed: damage
            db = self._damaged(e)
        self._mark()
        return db

    def _damaged(self, e: sqlite3.DatabaseError) -> sqlite3.Connection:
        """A damaged store, found on opening it or on reading its rows: a dry
        run reads it as empty (the next real run moves it aside); a real run
        moves it aside and starts a fresh one."""
        if self.readonly:
            self.warn(f"{self.path} is damaged ({e}); `flow run` will move it aside "
                      "and rebuild the outputs it cannot vouch for.")
            return _empty()
        aside = self._move_aside(e)
        self.warn(f"{self.path} was damaged ({e}); it was moved to {aside} and {_STARTS_EMPTY}")
        return self._connect()

    def _match_sidecars(self) -> None:
        """Give the WAL and shared-memory files the store's permissions, as
        SQLite does when it makes them: made while the store was read-only,
        they would keep it unwritable once its permissions are restored."""
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
        except OSError:
            return
        for suffix in ("-wal", "-shm"):
            try:
                if stat.S_IMODE(os.stat(self.path + suffix).st_mode) != mode:
                    os.chmod(self.path + suffix, mode)
            except OSError:
                pass  # none, or not ours to change: SQLite says what is wrong

    def _mark(self) -> None:
        """Leave ``.gitignore`` in .flow/ (see the module's docstring)."""
        mark = os.path.join(self.directory, _MARK)
        if not os.path.exists(mark):
            try:
                with open(mark, "w") as f:
                    f.write(_MARK_TEXT)
            except OSError:
                pass  # only a missing store will not be told from a first run

    def _failure(self, doing: str, e: sqlite3.Error, then: str) -> UserError:
        """The message for a store that cannot be opened, read or written: a
        full disk, a failing one, or else permissions."""
        code = (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF
        free = _free_bytes(self.directory)
        where = f"the disk that holds {self.directory}/"
        if code == SQLITE_FULL or (code == SQLITE_IOERR and free is not None and free < NEARLY_FULL):
            room = f"{free // 1024} KiB free; " if code == SQLITE_IOERR else ""
            return UserError(f"cannot {doing} {self.path}: the disk is full ({room}{e})",
                             f"Free some space on {where} (or raise your quota){then}")
        if code == SQLITE_IOERR:
            return UserError(f"cannot {doing} {self.path}: {e}", f"Check {where}: the system log says more{then}")
        access = "readable" if doing == "read" else "readable and writable"
        return UserError(f"cannot {doing} {self.path}: {e}",
                         f"Check that {self.directory}/ and its files are {access} by you{then}")

    def _move_aside(self, error: sqlite3.DatabaseError) -> str:
        aside = f"{self.path}.corrupt-{int(time.time())}"
        try:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.replace(self.path + suffix, aside + suffix)
        except OSError as moved:
            raise UserError(f"{self.path} is damaged ({error}) and cannot be moved aside: {moved.strerror}",
                            "Remove .flow/ to start over (outputs will count as not made by flow).") from None
        return aside

    def _connect(self) -> sqlite3.Connection:
        """Open the store, creating its tables, and load it."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA wal_autocheckpoint=20000")  # fewer checkpoints (each one syncs the disk)
        db.executescript(SCHEMA)
        add_columns(db)  # (a store written before ctime_ns keeps its stat rows, unused)
        db.executescript(INDEXES)
        db.executescript(GENERATION)
        if db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        db.execute("INSERT OR IGNORE INTO meta VALUES ('store', lower(hex(randomblob(8))))")
        self._take_in_journal(db)
        return self._load(db)

    def _take_in_journal(self, db: sqlite3.Connection) -> None:
        """Take in the records a killed run left in the journal (those of
        this store, not taken in yet), and empty it."""
        entries = self._journaled(db)
        if entries:
            _commit(db, lambda db: _take_in(db, entries))
        try:
            self.journal.clear()
        except OSError as e:
            raise UserError(f"cannot write {self.journal.path}: {e.strerror}",
                            f"Check that {self.directory}/ and its files are readable and writable by you.") from None

    def _journaled(self, db: sqlite3.Connection) -> list[Entry]:
        """The journal's entries for this store that it has not taken in
        (and, as a side effect, the store's id and last entry number)."""
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('store', 'journal')").fetchall())
        self.store_id = meta.get("store") or ""
        applied = int(meta.get("journal") or 0)
        entries = [e for e in self.journal.read() if e.store == self.store_id and e.seq > applied]
        # (Never counting down: records of this run waiting for a salvaged store keep their numbers.)
        self.seq = max(self.seq, applied, entries[-1].seq if entries else 0)
        return entries

    def _load(self, db: sqlite3.Connection) -> sqlite3.Connection:
        """Load the stat cache and output records (reading their every page,
        so that damage shows here rather than mid-run)."""
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise UserError(
                f"{self.path} was written by a newer flow (state version {row[0]}, this flow knows {SCHEMA_VERSION})",
                "Upgrade flow, or remove .flow/ to start over (outputs will count as not made by flow).",
            )
        if self.readonly and _has_meta_store(db):
            self._unread = self._journaled(db)  # (what a killed run recorded: a dry run sees it too)
        if self.rows:
            self._load_rows(db)
        return db

    def load_rows(self, paths: Iterable[str] | None = None) -> None:
        """Read the stat cache and the output records after all (see
        ``rows``): every row, or only those of ``paths`` (a run that decides
        only some jobs needs only theirs; a record of any other path is
        unknown to it). A store found damaged now is treated as one found
        damaged on opening."""
        if self.rows:
            return
        try:
            if paths is not None:
                try:
                    self._load_rows_of(self.db, paths)
                    return
                except sqlite3.DatabaseError:  # (an index can be damaged where its table is not: read it whole)
                    self.files.clear()
                    self.outputs.clear()
            self._load_rows(self.db)
            self.rows = True
        except sqlite3.OperationalError as e:
            raise self._failure("read", e, ".") from None
        except sqlite3.DatabaseError as e:
            self.files.clear()  # (rows of the damaged store: not this run's to use)
            self.outputs.clear()
            self.db.close()
            self.db = self._damaged(e)
            self.rows = True

    def _load_rows(self, db: sqlite3.Connection, keep: bool = False) -> None:
        """Every row into ``files`` and ``outputs`` (``keep``: not over the
        ones there, which this run may have written since)."""
        put_file = self.files.setdefault if keep else self.files.__setitem__
        put_output = self.outputs.setdefault if keep else self.outputs.__setitem__
        if has_ctime(db):  # (a dry run's view of an older store has no stat cache)
            for p, s, m, i, c, h in db.execute(
                    "SELECT path, size, mtime_ns, inode, ctime_ns, hash FROM files WHERE ctime_ns IS NOT NULL"):
                put_file(p if type(p) is str else name_of(p), (s, m, (i, c), h))
        for p, j, k, h, t in db.execute("SELECT path, job, key, hash, temp FROM outputs"):
            put_output(p if type(p) is str else name_of(p), OutputRecord(j if type(j) is str else name_of(j), k, h, t == 1))
        if self._unread:
            self._remember(self._unread)

    def _load_rows_of(self, db: sqlite3.Connection, paths: Iterable[str]) -> None:
        names = list(dict.fromkeys(db_name(p) for p in paths))
        stats = has_ctime(db)
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            if stats:
                for p, s, m, i, c, h in db.execute(
                        "SELECT path, size, mtime_ns, inode, ctime_ns, hash FROM files "
                        f"WHERE ctime_ns IS NOT NULL AND path IN ({marks})", chunk):
                    self.files[p if type(p) is str else name_of(p)] = (s, m, (i, c), h)
            for p, j, k, h, t in db.execute(f"SELECT path, job, key, hash, temp FROM outputs WHERE path IN ({marks})",
                                            chunk):
                self.outputs[p if type(p) is str else name_of(p)] = OutputRecord(
                    j if type(j) is str else name_of(j), k, h, t == 1)
        if self._unread:
            self._remember(self._unread)

    def mark(self) -> str | None:
        """The store's generation: while it is the same, no output record has
        changed (None: a store without one, as an older flow left it and a
        dry run reads it, or one that cannot be read)."""
        if self._unread:
            return None  # (records a killed run left are not in the store yet: its generation says nothing)
        self.flush()
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        except sqlite3.Error:
            return None
        return str(row[0]) if row else None

    # reads --------------------------------------------------------------------

    def job_parts(self, job_id: str) -> dict | None:
        """The parts of the key the job last ran with, to say why it runs again
        (from a record still in the journal, if it has one there)."""
        name = db_name(job_id)
        for entry in reversed(self.pending or self._unread):
            if entry.job[0] == name:
                return json.loads(entry.job[3])
        try:
            row = self.db.execute("SELECT parts FROM jobs WHERE id=?", (name,)).fetchone()
        except sqlite3.OperationalError as e:
            raise UserError(f"cannot read {self.path}: {e}") from None
        except sqlite3.DatabaseError as e:
            if self.readonly:
                return None
            self._salvage(e)
            return None
        return json.loads(row[0]) if row else None

    # writes -------------------------------------------------------------------

    def record_job(self, attempt: AttemptRecord, key: str, parts: dict,
                   outputs: list[tuple[str, str | None, bool]], stats: dict[str, FileStat],
                   command: str | None = None, ran: bool = True) -> None:
        """Record a finished job: its outputs, its key and (unless it did not
        run: ``--touch``) its attempt, all or nothing. It is durable once in
        the journal (one append); the store takes it in with others, in one
        transaction, once ``BATCH`` wait or the first waited ``WAIT_SECONDS``
        (``due_in``, ``flush``), and before any other write or read of it."""
        if self.readonly:
            return
        job_id = attempt.job
        entry = Entry(self.seq + 1, self.store_id,
                      [(db_name(p), db_name(job_id), key, h, int(t)) for p, h, t in outputs],
                      (db_name(job_id), attempt.rule, key, json.dumps(parts, separators=(",", ":")), attempt.ended,
                       shown(command)),
                      attempt.row() if ran else None, _file_rows(stats))
        if not self.pending:
            self._since = time.monotonic()
        self.pending.append(entry)  # (first: a Ctrl-C before the append below still gets it into the store)
        self.seq += 1
        try:
            self.journal.append(entry)
        except OSError as e:
            self.pending.pop()
            self.seq -= 1
            raise UserError(f"cannot write {self.journal.path}: {e.strerror}",
                            "Check the disk that holds .flow/; the job was not recorded and will run again.") from None
        self.files.update(stats)
        for p, h, t in outputs:
            self.outputs[p] = OutputRecord(job_id, key, h, t)
        if len(self.pending) >= BATCH:
            self.flush()

    def due_in(self) -> float | None:
        """Seconds until the records waiting in the journal are due in the
        store (None: none wait)."""
        if not self.pending:
            return None
        return max(0.0, self._since + WAIT_SECONDS - time.monotonic())

    def flush(self) -> None:
        """Take the records waiting in the journal into the store now."""
        if self.pending:
            self._write(_nothing)

    def unread_jobs(self) -> dict[str, tuple]:
        """Read-only: the ``jobs`` rows (rule, key, parts, finished, command)
        of records a killed run left in the journal, by job id: newer than
        the store's own rows of those jobs (``flow lineage`` reads both)."""
        return {name_of(e.job[0]): tuple(e.job[1:]) for e in self._unread}

    def record_failure(self, attempt: AttemptRecord) -> None:
        if self.readonly:
            return
        self._write(lambda db: db.execute(f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES ({PLACES})",
                                          attempt.row()))

    def finished_since(self, when: float) -> int:
        """How many job attempts succeeded since ``when`` (a run's start)."""
        self.flush()
        row = self.db.execute("SELECT count(*) FROM attempts WHERE status = 0 AND ended >= ?", (when,)).fetchone()
        return row[0] if row else 0

    def save_stats(self, stats: dict[str, FileStat]) -> None:
        """Store stat-cache entries learned while hashing (inputs, checks)."""
        if self.readonly or not stats:
            return
        self._write(lambda db: self._write_stats(db, stats))

    def forget_outputs(self, paths: list[str]) -> None:
        if self.readonly:
            return

        def write(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM outputs WHERE path=?", [(db_name(p),) for p in paths])
            db.executemany("DELETE FROM files WHERE path=?", [(db_name(p),) for p in paths])

        self._write(write)
        for p in paths:
            self.outputs.pop(p, None)
            self.files.pop(p, None)

    def _write_stats(self, db: sqlite3.Connection, stats: dict[str, FileStat]) -> None:
        db.executemany(_PUT_FILE, _file_rows(stats))
        self.files.update(stats)

    def transaction(self, write: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``write`` in one transaction (for the run history's rows)."""
        if not self.readonly:
            self._write(write)

    def _write(self, write: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``write`` in one transaction: all of it is recorded or none.
        A store found damaged only now (in a page the load did not read) is
        salvaged and the write made again. The records waiting in the
        journal go first, in the same transaction."""
        pending = self.pending
        if pending:
            given = write

            def write(db: sqlite3.Connection) -> None:
                _take_in(db, pending)
                given(db)
        try:
            self._commit(write)
            self._taken_in(pending)
            return
        except sqlite3.OperationalError as e:  # permissions, a full disk: not damage
            error: sqlite3.Error = e
        except sqlite3.DatabaseError as e:
            self._salvage(e)
            try:
                self._commit(write)
                self._taken_in(pending)
                return
            except sqlite3.Error as again:
                error = again
        raise self._failure("write", error, "; the job was not recorded and will run again.")

    def _commit(self, write: Callable[[sqlite3.Connection], object]) -> None:
        _commit(self.db, write)

    def _salvage(self, error: sqlite3.DatabaseError) -> None:
        """Move the damaged store aside and write what was loaded from it at
        the start (every output record and the stat cache) into a fresh one,
        so that no finished job's record is lost. Only the explanations of
        reruns and the history of attempts are. A store whose rows were not
        all loaded (``rows``) has the others read now; those that cannot be
        are lost (their outputs count as not made by flow), not the records
        this run holds."""
        lost = ""
        if not self.rows:
            try:
                self._load_rows(self.db, keep=True)
            except sqlite3.DatabaseError:
                lost = " (but those it could not read: their outputs count as not made by flow)"
            self.rows = True
        files, outputs = self.files, self.outputs
        self.db.close()
        aside = self._move_aside(error)
        self.db = self._connect()
        self.files, self.outputs = files, outputs  # the same objects: the hasher holds them
        try:
            self._commit(lambda db: (
                self._write_stats(db, dict(files)),
                db.executemany(_PUT_OUTPUT, [(db_name(p), db_name(r.job), r.key, r.hash, int(r.temp))
                                             for p, r in outputs.items()]),
            ))
        except sqlite3.Error as e:
            raise UserError(f"{self.path} proved damaged ({error}) and a fresh store cannot be written: {e}",
                            "Check that .flow/ is writable and the disk is not full.") from None
        self.warn(f"{self.path} proved damaged ({error}); it was moved to {aside} and its output "
                  f"records were carried over to a fresh store{lost}.")

    def _taken_in(self, pending: list[Entry]) -> None:
        """The store has taken ``pending`` in: the journal may forget them."""
        if pending:
            self.pending = []
            try:
                self.journal.clear()
            except OSError:
                pass  # (taking them in again changes nothing: see journal)

    def _remember(self, entries: list[Entry]) -> None:
        """What journal ``entries`` record, into ``files`` and ``outputs``."""
        for entry in entries:
            for p, j, k, h, t in entry.outputs:
                self.outputs[name_of(p)] = OutputRecord(name_of(j), k, h, t == 1)
            for p, size, mtime, inode, ctime, h in entry.stats:
                self.files[name_of(p)] = (size, mtime, (inode, ctime), h)

    def close(self) -> None:
        """Take the records waiting in the journal in, and close the store."""
        try:
            if not self.readonly:
                self.flush()
        finally:
            self.journal.close()
            self.db.close()


_CHUNK = 20_000  # paths per query (SQLite allows 32,766 parameters)


def _file_rows(stats: dict[str, FileStat]) -> list[tuple]:
    """Stat-cache entries as rows of ``files``."""
    return [(db_name(p), size, mtime, inode, ctime, h) for p, (size, mtime, (inode, ctime), h) in stats.items()]


def _nothing(db: sqlite3.Connection) -> None:
    """A write of nothing (the journal's records go with every write)."""


def _commit(db: sqlite3.Connection, write: Callable[[sqlite3.Connection], object]) -> None:
    """Run ``write`` in one transaction of ``db``."""
    db.execute("BEGIN IMMEDIATE")
    try:
        write(db)
        db.execute("COMMIT")
    except BaseException:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite already rolled back
        raise


def _take_in(db: sqlite3.Connection, entries: list[Entry]) -> None:
    """Write the records of journal ``entries`` (``State.record_job``), in
    their order, but those the store took in already (a Ctrl-C just after
    a commit leaves them pending), and the last one's number."""
    taken = db.execute("SELECT value FROM meta WHERE key = 'journal'").fetchone()
    entries = [e for e in entries if e.seq > int(taken[0] if taken else 0)]
    if not entries:
        return
    db.executemany(_PUT_OUTPUT, [row for e in entries for row in e.outputs])
    db.executemany(_PUT_JOB, [e.job for e in entries])
    db.executemany(f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES ({PLACES})",
                   [e.attempt for e in entries if e.attempt is not None])
    db.executemany(_PUT_FILE, [row for e in entries for row in e.stats])
    db.execute("INSERT OR REPLACE INTO meta VALUES ('journal', ?)", (str(entries[-1].seq),))


def _has_meta_store(db: sqlite3.Connection) -> bool:
    try:
        return db.execute("SELECT 1 FROM meta WHERE key = 'store'").fetchone() is not None
    except sqlite3.Error:
        return False


def _empty() -> sqlite3.Connection:
    """A store with no rows, in memory (what a dry run reads where there is none)."""
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.executescript(SCHEMA)
    return db


def _free_bytes(directory: str) -> int | None:
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize
