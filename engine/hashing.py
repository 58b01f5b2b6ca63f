"""Content hashes of files and directory trees, with a stat fast path.

A file whose size, mtime_ns and inode match the stat cache is not read
again. A file modified less than ``RACY_SECONDS`` before it was hashed could
change again within the same timestamp tick, so its cache entry is stored
unusable and the next run reads it once more (git calls this "racily clean").
"""

from __future__ import annotations

import os
import stat
import time

import xxhash

from .state import FileStat

# A file hashed within this long after its last change may change again in
# the same timestamp tick; a whole-second mtime suggests a coarse file system.
RACY_NS = 50_000_000
RACY_COARSE_NS = 2_000_000_000
_CHUNK = 1 << 20


def file_digest(path: str) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Hasher:
    def __init__(self, cache: dict[str, FileStat]):
        self.cache = cache
        self.memo: dict[str, str | None] = {}
        self.learned: dict[str, FileStat] = {}

    def digest(self, path: str) -> str | None:
        """The content hash of a file or directory; None if it does not exist."""
        if path in self.memo:
            return self.memo[path]
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            self.memo[path] = None
            return None
        h = self._tree(path) if stat.S_ISDIR(st.st_mode) else self._file(path, st)
        self.memo[path] = h
        return h

    def forget(self, path: str) -> None:
        """Drop what is known of ``path`` in this run (a job just rewrote it)."""
        self.memo.pop(path, None)

    def take_learned(self) -> dict[str, FileStat]:
        learned, self.learned = self.learned, {}
        return learned

    def _file(self, path: str, st: os.stat_result) -> str:
        rec = self.cache.get(path)
        if rec is not None and rec[0] == st.st_size and rec[1] == st.st_mtime_ns and rec[2] == st.st_ino:
            return rec[3]
        h = file_digest(path)
        after = os.stat(path)
        window = RACY_COARSE_NS if st.st_mtime_ns % 1_000_000_000 == 0 else RACY_NS
        racy = (
            (after.st_size, after.st_mtime_ns, after.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino)
            or time.time_ns() - st.st_mtime_ns < window
        )
        entry = (st.st_size, -1 if racy else st.st_mtime_ns, st.st_ino, h)
        if rec != entry:
            self.learned[path] = entry
            self.cache[path] = entry
        return h

    def _tree(self, path: str) -> str:
        h = xxhash.xxh3_128(b"tree\0")
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            rel = os.path.relpath(dirpath, path)
            if not filenames and not dirnames:
                h.update(f"d {rel}\0".encode())
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                try:
                    digest = self._file(full, os.stat(full))
                except FileNotFoundError:  # a dangling link
                    digest = "missing:" + os.readlink(full) if os.path.islink(full) else "missing"
                h.update(f"f {os.path.join(rel, name)}\0{digest}\0".encode())
        return h.hexdigest()
