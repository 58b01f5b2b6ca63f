"""A file flow keeps only to be faster (``.flow/keys``, ``graph``, ``stamp``):
written whole beside its place then renamed, so that a crash leaves the old
one or the new one, and framed with a name and a checksum, so that a damaged
one (a full disk, a power cut before the data reached the disk) is never
read back. Losing one costs time, never a decision."""

from __future__ import annotations

import os

import xxhash


def read(path: str, name: bytes) -> memoryview | None:
    """The payload of the file at ``path`` if it is intact and ``name``'s; else None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    head = len(name) + 16
    payload = memoryview(data)[head:]  # (not copied: a million jobs' graph is 170 MB)
    if data[: len(name)] != name or xxhash.xxh3_128_digest(payload) != data[len(name) : head]:
        return None
    return payload


def write(path: str, name: bytes, payload: bytes) -> bool:
    """Replace the file at ``path`` (False if it could not be: then it is
    left as it was; best effort). One run writes at a time, under the run
    lock, so the scratch file beside it has one name: one a killed run left
    is overwritten."""
    scratch = f"{path}.tmp"
    try:
        with open(scratch, "wb") as f:
            f.write(name + xxhash.xxh3_128_digest(payload))
            f.write(payload)
        os.replace(scratch, path)
        return True
    except OSError:
        try:
            os.unlink(scratch)
        except OSError:
            pass
        return False
