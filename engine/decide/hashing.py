"""Content hashes of files and directory trees, with a stat fast path.

A file whose size, mtime_ns, inode and ctime_ns match the stat cache is not
read again. Size and mtime are the user's to set (``touch -r``, ``os.utime``);
ctime is not: every change of content sets it to the current time, so a
rewrite that keeps size, mtime and inode is still seen. A file changed less
than ``RACY_NS`` before it was hashed could change again within the same
timestamp tick, keeping even its ctime, so its cache entry is stored unusable
and it is read once more later (git calls this "racily clean").

Only regular files, directories and links to them are read. A FIFO, socket
or device (or a link to one) is refused without being opened: opening a
FIFO blocks until a writer comes, and a device such as /dev/zero never ends.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable

import xxhash

from ..errors import UserError
from .state import FileStat

# A file hashed within this long after its last change may change again in
# the same timestamp tick (RACY_COARSE_NS on a file system of whole seconds).
RACY_NS = 50_000_000
RACY_COARSE_NS = 2_000_000_000
_CHUNK = 1 << 20


class SpecialFileError(UserError, OSError):
    """A path flow will not read: not a regular file, a directory or a link to
    one. A UserError, as the user named it (an input: its job cannot start,
    exit 2), and an OSError, as a file a job left that cannot be read (an
    output: the job fails, saying it cannot read it)."""

    def __init__(self, path: str, st: os.stat_result):
        what = f"{path} is {_kind(path, st)}, not a regular file or directory"
        only = "flow reads only regular files, directories and links to them"
        UserError.__init__(self, what, f"{only}: remove it, or put a regular file in its place.")
        self.filename = path
        self.strerror = f"{what}; {only}: change the job to leave only those in its outputs"


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(path: str, st: os.stat_result) -> str:
    kind = next((name for is_kind, name in _KINDS if is_kind(st.st_mode)), "a special file")
    try:
        return f"a link to {os.readlink(path)}, {kind}"
    except OSError:  # not a link
        return kind


def file_digest(path: str) -> str:
    # Not blocking, should a FIFO have taken the place of the file just looked at.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SpecialFileError(path, st)
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:  # most files: one read, no file object
            return xxhash.xxh3_128_hexdigest(data)
        h = xxhash.xxh3_128(data)
        while chunk := os.read(fd, _CHUNK):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


# A file's stat signature: size, mtime_ns, inode, ctime_ns (None: missing).
Signature = tuple[int, int, int, int]
# What ``decided_signature`` gives for a file it cannot vouch for: no stamp holds it.
NOT_A_FILE: tuple = ("not a file",)


class Hasher:
    def __init__(self, cache: dict[str, FileStat], seen: Callable[[str], object] | None = None):
        """``cache``: the stat cache (path -> signature and hash). ``seen``: a
        path's signature as this run already took it (``Stamp.kept``; None:
        missing, ``NOT_A_FILE``: not taken), so that deciding a job whose
        files the run has looked at costs no second ``stat`` each."""
        self.cache = cache
        self.seen = seen
        self.memo: dict[str, str | None] = {}  # path -> the hash this run decided with
        self.learned: dict[str, FileStat] = {}
        self.racy: set[str] = set()  # hashed too soon after a change: to hash again in settle()
        self.tree_sizes: dict[str, int] = {}  # directory -> the sizes of its files, when last hashed

    def digest(self, path: str) -> str | None:
        """The content hash of a file or directory; None if it does not exist.
        SpecialFileError for anything else, or a directory holding one."""
        if path in self.memo:
            return self.memo[path]
        if self.seen is not None and self._as_seen(path):
            return self.memo[path]
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            self.memo[path] = None
            return None
        if stat.S_ISREG(st.st_mode):
            h = self._file(path, st)
        elif stat.S_ISDIR(st.st_mode):
            h = self._tree(path)
        else:
            raise SpecialFileError(path, st)
        self.memo[path] = h
        return h

    def _as_seen(self, path: str) -> bool:
        """Learn the hash of ``path`` from its signature as the run saw it,
        if that is missing or the cached one's (True then)."""
        sig = self.seen(path)
        if sig is None:
            self.memo[path] = None
            return True
        rec = self.cache.get(path) if sig != NOT_A_FILE else None
        if rec is None or rec[0] != sig[0] or rec[1] != sig[1] or rec[2] != (sig[2], sig[3]):
            return False
        self.memo[path] = rec[3]
        return True

    def forget(self, path: str) -> None:
        """Drop what is known of ``path`` in this run (a job just rewrote it)."""
        self.memo.pop(path, None)

    def racy_digest(self, path: str) -> str | None:
        """The hash this run decided with of a file ``decided_signature``
        cannot vouch for because it was hashed too soon after a change
        (None for any other)."""
        digest = self.memo.get(path)
        entry = self.cache.get(path)
        if digest is None or entry is None or path in self.tree_sizes:
            return None
        return digest if entry[1] == -1 and entry[3] == digest else None

    def decided_signature(self, path: str) -> Signature | tuple | None:
        """The signature of ``path`` as this run decided with it: the one its
        hash was taken at, if that hash is still the cached one and was not
        taken too soon after a change (racy). ``NOT_A_FILE`` when there is
        none to vouch for its content (a directory; not hashed in this run)."""
        if path not in self.memo:
            return NOT_A_FILE
        digest = self.memo[path]
        if digest is None:
            return None
        entry = self.cache.get(path)
        if entry is None or entry[1] == -1 or entry[3] != digest or path in self.tree_sizes:
            return NOT_A_FILE
        return entry[0], entry[1], entry[2][0], entry[2][1]

    def size(self, path: str) -> int | None:
        """The size of a file, or of the files in a directory, as of when it
        was hashed in this run (a stat where it was not); None if missing."""
        rec = self.cache.get(path)
        if rec is not None and path in self.memo:
            return rec[0]
        if path in self.tree_sizes and path in self.memo:
            return self.tree_sizes[path]
        try:
            st = os.stat(path)
        except OSError:
            return None
        return self.tree_sizes.get(path) if stat.S_ISDIR(st.st_mode) else st.st_size

    def take_learned(self) -> dict[str, FileStat]:
        learned, self.learned = self.learned, {}
        return learned

    def settle(self, max_bytes: int = 4 << 20) -> None:
        """Hash once more, after their timestamp tick has passed, the small
        files hashed too soon after they changed (a job's outputs, mostly):
        a later change cannot hide in the same tick any more, so their entries
        become usable and the next run does not read them all again. (Not on
        a coarse file system: its tick is too long to wait for.)"""
        due = {}
        for path in self.racy:
            try:
                st = os.stat(path)
            except OSError:
                continue  # deleted (a temp() file): nothing to keep
            if stat.S_ISREG(st.st_mode) and st.st_size <= max_bytes and _racy_window(st) == RACY_NS:
                due[path] = st
        if not due:
            return
        wait_ns = max(_last_change(st) for st in due.values()) + RACY_NS - time.time_ns()
        if wait_ns > 0:
            time.sleep(min(wait_ns, RACY_NS) / 1e9)
        for path, st in due.items():  # (the memo keeps the hash decided with: see decided_signature)
            self._file(path, st)

    def _file(self, path: str, st: os.stat_result) -> str:
        rec = self.cache.get(path)
        if (rec is not None and rec[0] == st.st_size and rec[1] == st.st_mtime_ns
                and rec[2] == (st.st_ino, st.st_ctime_ns)):
            return rec[3]
        h = file_digest(path)
        after = os.stat(path)
        racy = _signature(after) != _signature(st) or time.time_ns() - _last_change(st) < _racy_window(st)
        entry = (st.st_size, -1 if racy else st.st_mtime_ns, (st.st_ino, st.st_ctime_ns), h)
        if racy:
            self.racy.add(path)
        else:
            self.racy.discard(path)
        if rec != entry:
            self.learned[path] = entry
            self.cache[path] = entry
        return h

    def _tree(self, path: str) -> str:
        h = xxhash.xxh3_128(b"tree\0")
        total = 0
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            rel = os.path.relpath(dirpath, path)
            if not filenames and not dirnames:
                h.update(f"d {rel}\0".encode())
            for name in sorted(filenames):
                member = os.path.join(dirpath, name)
                digest = self._member(member)
                h.update(f"f {os.path.join(rel, name)}\0{digest}\0".encode())
                entry = self.cache.get(member)
                total += entry[0] if entry is not None else 0
        self.tree_sizes[path] = total
        return h.hexdigest()

    def _member(self, path: str) -> str:
        """The hash of an entry of a tree that os.walk lists as a file: any
        entry but a directory, so also links, FIFOs, sockets and devices."""
        try:
            st = os.stat(path)
        except FileNotFoundError:  # a dangling link
            return "missing:" + os.readlink(path) if os.path.islink(path) else "missing"
        if stat.S_ISREG(st.st_mode):
            return self._file(path, st)
        if stat.S_ISDIR(st.st_mode):  # made a directory since it was listed
            return self._tree(path)
        raise SpecialFileError(path, st)


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def settled(st: os.stat_result) -> bool:
    """Whether a file last changed long enough ago that a change now would
    show in its signature (its hash can vouch for it: not racily clean)."""
    return time.time_ns() - _last_change(st) >= _racy_window(st)


def _last_change(st: os.stat_result) -> int:
    """When the file last changed: its ctime, or its mtime if set later (in the future)."""
    return max(st.st_ctime_ns, st.st_mtime_ns)


def _racy_window(st: os.stat_result) -> int:
    """How long after a change another one may share its timestamps. The
    kernel sets ctime from its clock (the user sets mtime at will): a
    whole-second ctime means a file system that keeps whole seconds."""
    return RACY_COARSE_NS if st.st_ctime_ns % 1_000_000_000 == 0 else RACY_NS
