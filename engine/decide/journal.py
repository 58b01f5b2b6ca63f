"""The journal, ``.flow/journal``: finished jobs' records, each made durable
by one append, until the state store takes them in, many per transaction.

A transaction of the store costs a job a hundred microseconds and more
(the pages of four tables and their indexes); an append costs a few. A
record is as durable once appended as a commit to the store makes it (the
store does not sync its commits either): a kill -9 loses none. The store
takes the records in by the batch (``State.record_job``), and a run killed
before it did leaves them here, for the next opening of the store to take
in. Each entry is framed and checksummed, so a torn last one (a kill in
the middle of an append) is not read; each carries a sequence number of
the store's, so that taking the same entries in twice (a kill between the
store's commit and the journal's truncation) changes nothing.
"""

from __future__ import annotations

import marshal
import os
import struct
from typing import NamedTuple

import xxhash

FILE = "journal"
_FRAME = struct.Struct("<IQ")  # the payload's length, and its xxh64


class Entry(NamedTuple):
    """One finished job's record, as the store's tables take it in."""

    seq: int  # its number: the store keeps the last one it took in
    store: str  # the id of the store it is for
    outputs: list[tuple]  # rows of ``outputs``
    job: tuple  # the row of ``jobs``
    attempt: tuple | None  # the row of ``attempts`` (None: recorded without a run)
    stats: list[tuple]  # rows of ``files``


class Journal:
    """Appends to ``directory``/journal; reads what a killed run left."""

    def __init__(self, directory: str, like: str | None = None):
        """``like``: a file whose permissions and owner a new journal takes
        (the store's: a journal made by root in a user's project must stay
        writable by the user, as SQLite keeps its own side files)."""
        self.path = os.path.join(directory, FILE)
        self.like = like
        self._fd: int | None = None

    def append(self, entry: Entry) -> None:
        """Keep ``entry`` durably: one write."""
        payload = marshal.dumps(tuple(entry))
        frame = _FRAME.pack(len(payload), xxhash.xxh64_intdigest(payload)) + payload
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
            self._take_after_store()
        view = memoryview(frame)
        while view:
            view = view[os.write(self._fd, view):]

    def _take_after_store(self) -> None:
        try:
            st = os.stat(self.like) if self.like else None
            if st is not None:
                os.fchmod(self._fd, st.st_mode & 0o777)
                if os.geteuid() == 0:
                    os.fchown(self._fd, st.st_uid, st.st_gid)
        except OSError:
            pass  # (not ours to change: whoever cannot write it is told so)

    def read(self) -> list[Entry]:
        """Every whole entry, in the order appended (a torn or damaged one
        ends the reading: nothing after it was acknowledged)."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        entries, at = [], 0
        while at + _FRAME.size <= len(data):
            length, digest = _FRAME.unpack_from(data, at)
            payload = data[at + _FRAME.size : at + _FRAME.size + length]
            if len(payload) != length or xxhash.xxh64_intdigest(payload) != digest:
                break
            try:
                entries.append(Entry(*marshal.loads(payload)))
            except (ValueError, EOFError, TypeError):
                break
            at += _FRAME.size + length
        return entries

    def clear(self) -> None:
        """Forget every entry (the store has taken them in)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        elif os.path.isfile(self.path) and os.path.getsize(self.path) > 0:
            os.truncate(self.path, 0)

    def close(self) -> None:
        """Let go of the file (an append opens it again)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
