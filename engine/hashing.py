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
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:  # most files: one read, no file object
            return xxhash.xxh3_128_hexdigest(data)
        h = xxhash.xxh3_128(data)
        while chunk := os.read(fd, _CHUNK):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


class Hasher:
    def __init__(self, cache: dict[str, FileStat]):
        self.cache = cache
        self.memo: dict[str, str | None] = {}
        self.learned: dict[str, FileStat] = {}
        self.racy: dict[str, tuple[int, int, int]] = {}  # hashed too soon after a write: size, mtime_ns, inode

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

    def settle(self, max_bytes: int = 4 << 20) -> None:
        """Hash once more, after their timestamp tick has passed, the small
        files hashed too soon after they were written (a job's outputs, mostly):
        a later write cannot hide in the same tick any more, so their entries
        become usable and the next run does not read them all again."""
        racy = {p: s for p, s in self.racy.items() if s[0] <= max_bytes and s[1] % 1_000_000_000}
        if not racy:
            return
        wait_ns = max(s[1] for s in racy.values()) + RACY_NS - time.time_ns()
        if wait_ns > 0:
            time.sleep(min(wait_ns, RACY_NS) / 1e9)
        for path, seen in racy.items():
            try:
                st = os.stat(path)
            except OSError:
                continue  # deleted (a temp() file): nothing to keep
            if (st.st_size, st.st_mtime_ns, st.st_ino) == seen and stat.S_ISREG(st.st_mode):
                self.memo.pop(path, None)
                self._file(path, st)

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
        if racy:
            self.racy[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
        else:
            self.racy.pop(path, None)
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
