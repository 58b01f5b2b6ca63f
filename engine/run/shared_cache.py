"""A shared, content-addressed store of job results: a job's outputs kept
under its key, so that a job with the same key elsewhere (another checkout,
another machine, CI) restores them instead of running.

The store may live on a network file system that several machines write at
once, so nothing in it is ever changed in place: an entry is built in a
private directory under ``tmp/`` and appears whole, by one ``rename``, under
``entries/``; it leaves the same way, renamed back into ``tmp/`` before it is
removed. A reader therefore sees a complete entry or none. Stored files are
read-only, so that nobody edits an entry by mistake, and restored by copy,
never by link, so that an edit of a restored output cannot reach the store.
Nothing in an entry names the working directory: checkouts share entries.

    ROOT/entries/<key[:2]>/<key>/manifest.json   the key, rule, files (written last)
    ROOT/entries/<key[:2]>/<key>/<i>             the i-th output: a file or a tree
    ROOT/tmp/store-<random>/                     an entry being built
    ROOT/tmp/gone-<random>/                      an entry being removed

An entry's last use is its manifest's modification time (``lookup`` sets
it); ``prune`` removes the least recently used first.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from flow.rules.base import temp_beside

MANIFEST = "manifest.json"
VERSION = 1  # of the manifest; an entry of another version is a miss
LEFTOVER_SECONDS = 3600  # a directory in tmp/ this old was left by a killed store (or removal)
_KEY = re.compile(r"[0-9a-fA-F]{2,}")


class StoredFile(NamedTuple):
    """One output of an entry: its path as the job named it (for people),
    the engine's digest of it, whether a directory, and its bytes."""

    path: str
    digest: str
    is_dir: bool
    size: int


@dataclass(frozen=True)
class Entry:
    """A complete entry: what was stored under ``key``, and where."""

    key: str
    rule: str
    created: float
    files: tuple[StoredFile, ...]
    directory: str  # the entry's directory in the cache

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class RuleUsage(NamedTuple):
    entries: int
    bytes: int


@dataclass
class CacheStats:
    entries: int = 0
    bytes: int = 0
    rules: dict[str, RuleUsage] = field(default_factory=dict)
    oldest_use: float | None = None  # time.time() of the least recently used entry's last use
    newest_use: float | None = None


class SharedCache:
    def __init__(self, root: str):
        self.root = root
        self.entries = os.path.join(root, "entries")
        self.tmp = os.path.join(root, "tmp")

    # reading -------------------------------------------------------------------

    def lookup(self, key: str) -> Entry | None:
        """The complete entry stored under ``key``, marked as used now (for
        ``prune``); None if there is none, as in a cache not made yet."""
        entry = _read_entry(self._final(key))
        if entry is None or entry.key != key:
            return None
        try:
            os.utime(os.path.join(entry.directory, MANIFEST))
        except OSError:  # a read-only cache, another user's entry: a hit all the same
            pass
        return entry

    def restore(self, entry: Entry, paths: list[str]) -> None:
        """Copy the entry's outputs to ``paths`` (in the order stored). All are
        copied under temporary names beside them first and renamed into place
        only once every copy is whole: an entry removed meanwhile (``OSError``,
        which the caller takes for a miss) leaves nothing at any path."""
        if len(paths) != len(entry.files):
            raise ValueError(f"entry {entry.key} holds {len(entry.files)} outputs, "
                             f"not {len(paths)}")
        staged: list[str] = []
        try:
            for i, path in enumerate(paths):
                tmp = temp_beside(path)
                _remove_tree(tmp)  # (a crash's leftover)
                parent = os.path.dirname(path)
                if parent:
                    os.makedirs(parent, exist_ok=True)
                staged.append(tmp)
                _copy(os.path.join(entry.directory, str(i)), tmp, stored=False)
            if not os.path.exists(os.path.join(entry.directory, MANIFEST)):  # removed while copied
                raise FileNotFoundError(errno.ENOENT, "the cache entry was removed",
                                        entry.directory)
            for tmp, path in zip(staged, paths, strict=True):
                if os.path.isdir(tmp) or (os.path.isdir(path) and not os.path.islink(path)):
                    _remove_tree(path)  # (a rename replaces a file by a file, not a directory)
                os.replace(tmp, path)
        finally:
            for tmp in staged:
                _remove_tree(tmp)

    # writing -------------------------------------------------------------------

    def store(self, key: str, rule: str, files: list[tuple[str, str]]) -> bool:
        """Store the outputs ``files`` (path, digest) under ``key``; False if
        an entry for the key is there already or appeared meanwhile (another
        process stored it, which is fine). ``OSError`` (naming the path) if an
        output cannot be read or the cache cannot be written."""
        final = self._final(key)
        if os.path.exists(os.path.join(final, MANIFEST)):
            return False
        work = self._private_dir("store")
        try:
            records = []
            for i, (path, digest) in enumerate(files):
                copy = os.path.join(work, str(i))
                size = _copy(path, copy, stored=True)
                is_dir = os.path.isdir(copy) and not os.path.islink(copy)
                records.append(StoredFile(path, digest, is_dir, size))
            _write_manifest(work, key, rule, records)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            try:
                os.rename(work, final)
            except OSError as e:
                if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    return False
                raise
            return True
        finally:
            _remove_tree(work)  # (gone if it was renamed)

    def discard(self, key: str) -> None:
        """Remove the entry under ``key`` (one that restored wrong): renamed
        away in one step, so that no reader finds it half removed."""
        gone = self._move_away(self._final(key))
        if gone is not None:
            _remove_tree(gone)

    # the cache as a whole --------------------------------------------------------

    def stats(self) -> CacheStats:
        """How many entries, how many bytes in all and by rule, and when the
        least and most recently used entries were last used."""
        s = CacheStats()
        for entry, used in self._listing():
            s.entries += 1
            s.bytes += entry.size
            rule = s.rules.get(entry.rule, RuleUsage(0, 0))
            s.rules[entry.rule] = RuleUsage(rule.entries + 1, rule.bytes + entry.size)
            s.oldest_use = used if s.oldest_use is None else min(s.oldest_use, used)
            s.newest_use = used if s.newest_use is None else max(s.newest_use, used)
        return s

    def prune(self, max_bytes: int) -> tuple[int, int]:
        """Remove the least recently used entries until the rest hold at most
        ``max_bytes``, and what killed stores left in tmp/ over an hour ago;
        the entries removed and the bytes freed. An entry that cannot be
        removed (permissions) is an ``OSError``."""
        now = time.time()
        listing = sorted(self._listing(), key=lambda eu: (eu[1], eu[0].key))
        total = sum(e.size for e, _ in listing)
        removed = freed = 0
        for entry, _used in listing:
            if total <= max_bytes:
                break
            total -= entry.size
            gone = self._move_away(entry.directory)
            if gone is None:  # another prune or a discard took it
                continue
            _remove_tree(gone)
            removed += 1
            freed += entry.size
        self._remove_leftovers(now - LEFTOVER_SECONDS)
        return removed, freed

    # helpers -------------------------------------------------------------------

    def _final(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a cache key: {key!r}")
        return os.path.join(self.entries, key[:2], key)

    def _private_dir(self, kind: str) -> str:
        """A new directory in tmp/ (made with the cache root if need be),
        readable by all whom the umask lets: it becomes a shared entry."""
        os.makedirs(self.tmp, exist_ok=True)
        path = os.path.join(self.tmp, f"{kind}-{secrets.token_hex(12)}")
        os.mkdir(path)
        return path

    def _move_away(self, directory: str) -> str | None:
        """Rename an entry's directory into tmp/, where no lookup looks;
        where it went, or None if it was gone already."""
        gone = os.path.join(self.tmp, f"gone-{secrets.token_hex(12)}")
        try:
            os.makedirs(self.tmp, exist_ok=True)
            os.rename(directory, gone)
        except FileNotFoundError:
            return None
        return gone

    def _listing(self) -> Iterator[tuple[Entry, float]]:
        """Every readable entry, with the time it was last used."""
        for shard in _subdirs(self.entries):
            for directory in _subdirs(shard):
                entry = _read_entry(directory, any_version=True)
                if entry is None:
                    continue
                try:
                    used = os.stat(os.path.join(directory, MANIFEST)).st_mtime
                except OSError:  # removed meanwhile
                    continue
                yield entry, used

    def _remove_leftovers(self, before: float) -> None:
        """Best effort: what killed stores and removals left in tmp/, and
        entries with no readable manifest (never made by a store), whose
        directory was last modified before ``before`` (a younger one may
        still be in the making). A removal under way elsewhere may be met
        here (a renamed entry keeps its time): both sides tolerate that."""
        broken = [d for shard in _subdirs(self.entries) for d in _subdirs(shard)
                  if _read_entry(d, any_version=True) is None]
        for path in [*_subdirs(self.tmp), *broken]:
            try:
                if os.lstat(path).st_mtime < before:
                    _remove_tree(path)
            except OSError:
                pass


# the manifest ---------------------------------------------------------------------


def _write_manifest(directory: str, key: str, rule: str, files: list[StoredFile]) -> None:
    """The manifest, last into the entry being built: its presence says the
    entry is whole. It stays writable (unlike the outputs) so that a lookup
    can mark the entry as used."""
    data = {"version": VERSION, "key": key, "rule": rule, "created": time.time(),
            "files": [f._asdict() for f in files]}
    with open(os.path.join(directory, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)


def _read_entry(directory: str, any_version: bool = False) -> Entry | None:
    """The entry in ``directory`` if its manifest reads whole; ``any_version``:
    also one written by another version of flow (to count and prune it)."""
    try:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as f:
            data = json.load(f)
        if data["version"] != VERSION and not any_version:
            return None
        files = tuple(StoredFile(str(f["path"]), str(f["digest"]), bool(f["is_dir"]),
                                 int(f["size"])) for f in data["files"])
        return Entry(str(data["key"]), str(data["rule"]), float(data["created"]), files, directory)
    except (OSError, ValueError, KeyError, TypeError):
        return None


# files ----------------------------------------------------------------------------


def _copy(src: str, dst: str, stored: bool) -> int:
    """Copy a file, symbolic link (as a link) or tree to ``dst`` (new), and
    the bytes of its files. ``stored``: into the cache, read-only; else out
    of it, writable as the umask allows. Execute bits are kept either way."""
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
        return 0
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(dst)
        size = 0
        for name in sorted(os.listdir(src)):
            size += _copy(os.path.join(src, name), os.path.join(dst, name), stored)
        if stored:
            os.chmod(dst, 0o555)
        return size
    execute = st.st_mode & 0o111
    # (made first, so that the umask applies to its mode)
    os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 | execute))
    shutil.copyfile(src, dst)  # (a FIFO or device: shutil.SpecialFileError, an OSError)
    if stored:
        os.chmod(dst, 0o444 | execute)
    return os.path.getsize(dst)


def _remove_tree(path: str) -> None:
    """Remove a file, link or tree, read-only directories too; a part that
    another process removed meanwhile is fine (a prune's tidying of tmp/ and
    a removal can meet)."""
    def retry(func, p, exc_info) -> None:
        if isinstance(exc_info[1], FileNotFoundError):
            return
        if func not in (os.unlink, os.rmdir, os.remove):
            raise exc_info[1]
        try:
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            func(p)
        except FileNotFoundError:
            pass

    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=retry)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _subdirs(directory: str) -> list[str]:
    """The directories in ``directory`` (none if it is missing or unreadable)."""
    try:
        with os.scandir(directory) as it:
            return [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
