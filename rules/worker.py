"""A long-lived Python worker: runs ``run:``/``script:`` (and later DuckDB and
MLX) jobs sent by the engine, one at a time.

Protocol, over two pipes whose descriptors are given as arguments:
each message is a 4-byte big-endian length and a pickle. The engine sends
``(job_id, kind, payload, ctx)``; the worker answers ``(job_id, error)``
with ``error`` None on success, else the text to show the user.
Stdout and stderr stay the job's own.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys

from .base import JobFailed

_HEADER = struct.Struct(">I")


def read_message(fd: int):
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    body = _read_exact(fd, size)
    if body is None:
        return None
    return pickle.loads(body)


def write_message(fd: int, message) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    data = _HEADER.pack(len(body)) + body
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def run_job(kind: str, payload, ctx) -> str | None:
    from . import python

    try:
        if kind in ("run", "script"):
            python.execute(kind, payload, ctx)
        else:
            import importlib

            module = importlib.import_module(f"flow.rules.{kind}")
            module.execute(payload, ctx)
    except JobFailed as e:
        return str(e)
    except SystemExit as e:
        if e.code in (None, 0):
            return None
        return f"the job called exit({e.code!r})"
    except BaseException as e:  # the user's code may raise anything
        return python.user_traceback(e)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return None


def warm(kinds: list[str]) -> None:
    """Import the modules jobs of these kinds need, before the first arrives."""
    import importlib

    for kind in kinds:
        try:
            module = importlib.import_module(f"flow.rules.{kind}")
            if hasattr(module, "warm"):
                module.warm()
        except Exception:  # noqa: BLE001 (the job itself will say what is missing)
            pass


def main(argv: list[str]) -> None:
    rfd, wfd = int(argv[0]), int(argv[1])
    home = os.getcwd()
    while True:
        message = read_message(rfd)
        if message is None:
            return
        job_id, kind, payload, ctx = message
        if job_id is None:  # a warm-up: import what the coming jobs need; nothing to answer
            warm(payload)
            continue
        error = run_job(kind, payload, ctx)
        os.chdir(home)  # a job may change directory (scripts often do); the next starts where flow runs
        write_message(wfd, (job_id, error))


if __name__ == "__main__":
    main(sys.argv[1:])
