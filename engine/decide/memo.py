"""The key memo, ``.flow/keys``: each job's key found again without working it out.

A job's key (``Rebuilder.key``) formats and quotes its command, serializes
its params and hashes it all: tens of microseconds a job, most of what a
run that changes nothing costs. The key is a pure function of

- the workflow's definitions: the Flowfile and what it includes, its config
  files, the config and top-level values as loaded, the working directory
  and flow's version (``definitions``; ``-j`` is not one: the ``{threads}``
  a command is given is left out of its key);
- the job: rule, wildcards, input, output and log paths and their names,
  params, threads, resources;
- the contents of its inputs, and of any file its action reads (a script,
  ``Prepared.sources``).

The memo maps a cheap hash of all of that, the job's *check*, to the key
last worked out from it. A job whose check is unchanged has that key, and
nothing is formatted, quoted or serialized for it. An entry states a fact
about a pure function, so an old entry is never wrong, only unused: the file
needs no invalidation. It is replaced whole at the end of a run, and one
that is damaged is ignored and written anew (``engine.cachefile``). ``--no-graph-cache`` (or
``FLOW_NO_GRAPH_CACHE=1``) leaves it unread and unwritten: decisions are
the same without it, only slower.
"""

from __future__ import annotations

import marshal
import os
import pickle
from collections.abc import Callable, Iterable
from typing import Any

import xxhash

from flow import __version__

from .. import cachefile
from ..graph.job import Job

FILE = "keys"
# What an entry means. Raise it when what goes into a key or a check changes:
# entries of an older meaning must not match.
FORMAT = 2
_NAME = b"flow-keys\0"


def definitions(sources: Iterable[str], digest: Callable[[str], str | None], config: dict,
                globals_: dict[str, Any]) -> str:
    """The hash of what every job's key depends on besides the job itself."""
    h = xxhash.xxh3_128(f"{FORMAT}\0{__version__}\0{os.getcwd()}\0".encode())
    for path in sources:
        h.update(f"{path}\0{digest(path)}\0".encode("utf-8", "surrogatepass"))
    try:  # (a value whose pickle changes from run to run, a set, only costs the caches their use)
        h.update(pickle.dumps((config, globals_), protocol=5))
    except Exception:  # noqa: BLE001 - config keys YAML allows, ...: then no caches, never an error
        return ""
    return h.hexdigest()


class KeyMemo:
    """Check -> key, per job id, for one set of definitions."""

    def __init__(self, directory: str, definitions_: str, readonly: bool = False):
        self.path = os.path.join(directory, FILE)
        self.definitions = definitions_
        self.readonly = readonly  # a dry run: what it learns is never saved, so it learns nothing
        self.entries: dict[str, bytes] = {}  # job id -> check (16 bytes) + key
        self.sources: dict[str, tuple[tuple[str, str], ...]] = {}  # job id -> files its action read
        self.changed = False
        self._read()

    # the memo -------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Worth a check: it knows keys, or learns them (an empty memo of a dry run does neither)."""
        return bool(self.entries) or not self.readonly

    def check(self, job: Job, digests: list[str]) -> bytes:
        """The hash of everything the job's key depends on but the definitions
        (the whole file is kept for one set) and its action's sources (which
        ``key`` compares one by one)."""
        fields = [job.id, str(len(job.inputs)), *job.inputs, *digests,
                  str(len(job.outputs)), *job.outputs, str(len(job.logs)), *job.logs, str(job.threads)]
        if job.resources:
            fields.append(repr(job.resources))
        if job.params:
            fields.append(repr(job.params))
        if job.input_names or job.output_names or job.log_names:
            fields.append(repr((job.input_names, job.output_names, job.log_names)))
        return xxhash.xxh3_128_digest("\0".join(fields).encode("utf-8", "surrogatepass"))

    def key(self, job_id: str, check: bytes, digest: Callable[[str], str | None]) -> str | None:
        """The key the job had when its check was ``check``, if its action's
        sources are still as they were; else None."""
        entry = self.entries.get(job_id)
        if entry is None or entry[:16] != check:
            return None
        sources = self.sources.get(job_id)
        if sources and any(digest(path) != was for path, was in sources):
            return None
        return entry[16:].decode("ascii")

    def learn(self, job_id: str, check: bytes, key: str, sources: tuple[tuple[str, str], ...]) -> None:
        if self.readonly:
            return
        entry = check + key.encode("ascii")
        if self.entries.get(job_id) == entry and self.sources.get(job_id, ()) == sources:
            return
        self.entries[job_id] = entry
        if sources:
            self.sources[job_id] = sources
        else:
            self.sources.pop(job_id, None)
        self.changed = True

    # the file ---------------------------------------------------------------------------

    def _read(self) -> None:
        payload = cachefile.read(self.path, _NAME)
        if payload is None:
            return  # none yet, or damaged: written anew
        try:
            definitions_, entries, sources = marshal.loads(payload)
        except (ValueError, EOFError, TypeError):
            return
        if definitions_ == self.definitions and isinstance(entries, dict) and isinstance(sources, dict):
            self.entries, self.sources = entries, sources

    def save(self) -> None:
        """Replace the file, if anything was learned. Best effort: a memo that
        cannot be written costs the next run time, never a wrong decision."""
        if not self.changed or self.readonly:
            return
        cachefile.write(self.path, _NAME, marshal.dumps((self.definitions, self.entries, self.sources)))
        self.changed = False
