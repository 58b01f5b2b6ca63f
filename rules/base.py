"""What every kind of job shares: the job context it receives and the
interface the engine calls (``Runner``, ``Action``), with the defaults of
actions (``ActionBase``).

An action is built once per rule from the rule's directive (``shell:``,
``run:``, ...) by ``from_directive``. For each job the engine asks it for a
``Prepared`` action: ``signature`` is the text that goes into the job's key
(so changing a command, a run block, a script or SQL reruns the job), and
``payload`` is what the executor needs to run it. Only ``shell`` actions run
as a plain subprocess; the others run in a long-lived Python worker
(``rules.worker``), which calls the kind's ``execute``. The registry of kinds
is ``flow.rules``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self


class NamedList(list):
    """A list whose entries may also have names: ``input[0]``, ``input.lookup``.

    A named entry that expanded to several paths maps to a slice, so
    ``input.parts`` is itself a list."""

    def __init__(self, items=(), names: dict[str, int | tuple[int, int]] | None = None):
        super().__init__(items)
        object.__setattr__(self, "_names", dict(names or {}))

    def __getattr__(self, name: str):
        names = object.__getattribute__(self, "_names")
        if name in names:
            where = names[name]
            if isinstance(where, tuple):
                return NamedList(self[where[0] : where[1]])
            return self[where]
        raise AttributeError(f"no entry named {name!r} (names: {', '.join(names) or 'none'})")

    def __setattr__(self, name, value):
        raise AttributeError("job lists are read-only")

    def __getitem__(self, key):
        if isinstance(key, str):  # input["lookup"], as in Snakemake
            if key not in self._names:
                raise KeyError(key)
            return getattr(self, key)
        return super().__getitem__(key)

    def get(self, key: str, default=None):
        return getattr(self, key) if key in self._names else default

    def keys(self) -> list[str]:
        return list(self._names)

    def items(self):
        return [(k, getattr(self, k)) for k in self._names]

    def __reduce__(self):
        return (NamedList, (list(self), self._names))

    def __str__(self) -> str:
        return " ".join(str(x) for x in self)


class Namespace(NamedList):
    """Named values only (``params``, ``wildcards``, ``resources``), in order."""

    def __init__(self, values: dict[str, Any] | None = None, positional=()):
        values = dict(values or {})
        items = list(positional) + list(values.values())
        names = {k: len(positional) + i for i, k in enumerate(values)}
        super().__init__(items, names)

    def __reduce__(self):
        names = self._names
        values = {k: self[i] for k, i in names.items()}
        return (Namespace, (values, list(self)[: len(self) - len(values)]))


@dataclass
class JobContext:
    """Everything a job's code may read, as Snakemake exposes it to ``run:``
    blocks and scripts (``snakemake.input`` etc.). Picklable."""

    rule: str
    input: NamedList
    output: NamedList
    params: Namespace
    wildcards: Namespace
    threads: int
    resources: Namespace
    log: NamedList
    config: dict
    scriptdir: str = "."
    globals: dict = field(default_factory=dict)

    def format_namespace(self) -> dict[str, Any]:
        return {
            "input": self.input, "output": self.output, "params": self.params,
            "wildcards": self.wildcards, "threads": self.threads,
            "resources": self.resources, "log": self.log, "config": self.config,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class Prepared:
    """One job's action, ready to run: ``kind`` selects the runner."""

    kind: str
    signature: str
    payload: Any = None
    display: str | None = None  # what -p prints
    in_worker: bool = field(kw_only=True)  # run by a Python worker, else as a subprocess (shell)
    # Files besides the job's inputs whose contents the signature holds (a
    # script), with their hashes: the engine's memo of keys checks them.
    sources: tuple[tuple[str, str], ...] = field(default=(), kw_only=True)


class ActionError(Exception):
    """A job's action could not be prepared (a bad placeholder, ...)."""


class Runner(Protocol):
    """What the executor and the worker need of a kind of job: where it runs
    and, for a worker, how. Rule actions are runners; so is the check of a
    rule's ``schema:`` (``contracts``), which the scheduler adds after a job."""

    kind: ClassVar[str]  # the name sent to the worker with each job
    in_worker: ClassVar[bool]  # False only for shell, which runs as a subprocess

    @staticmethod
    def execute(payload: Any, ctx: JobContext | None) -> None:
        """Run one job in the worker; raise ``JobFailed`` to fail it with a message."""

    @staticmethod
    def warm() -> None:
        """Import what the jobs need (DuckDB, MLX, ...) before the first arrives."""


class Action(Runner, Protocol):
    """A rule's action: built from its directive when the Flowfile is loaded,
    prepared for each job."""

    what: ClassVar[str]  # how "the ... changed" names it: "command", "run: block", ...
    takes: ClassVar[str]  # what the directive's value must be, e.g. "command (a string)"
    reads: tuple[str, ...]  # values outside its text that its key holds (a run: block's globals)

    @classmethod
    def from_directive(cls, text: str, file: str, line: int) -> Self:
        """The action for a directive's value, written at ``file``:``line``;
        ``ActionError`` if the value cannot be one."""

    def check_outputs(self, outputs: list[tuple[str, frozenset[str]]]) -> None:
        """Refuse, when the Flowfile is loaded, outputs (path, flags) it cannot write."""

    def source_files(self) -> tuple[str, ...]:
        """Files of the workflow it reads besides its inputs (a script), so
        that ``flow watch`` rebuilds when one is saved."""

    def prepare(self, ctx: JobContext) -> Prepared:
        """One job's action: its key's text and what the runner needs."""


class ActionBase:
    """The defaults of ``Action``: a subclass sets ``kind`` and ``what``, says
    whether it runs ``in_worker`` and implements ``prepare`` (and ``execute``
    if it does). Most actions take their directive's text as it is."""

    kind: ClassVar[str]
    in_worker: ClassVar[bool] = True
    what: ClassVar[str]
    takes: ClassVar[str] = "string"
    reads: tuple[str, ...] = ()

    @classmethod
    def from_directive(cls, text: str, file: str, line: int) -> Self:
        return cls(text)

    def check_outputs(self, outputs: list[tuple[str, frozenset[str]]]) -> None:
        """Any outputs will do, unless the kind says otherwise."""

    def source_files(self) -> tuple[str, ...]:
        """None: the action's text is in the Flowfile."""
        return ()

    def prepare(self, ctx: JobContext) -> Prepared:
        raise NotImplementedError

    @staticmethod
    def execute(payload: Any, ctx: JobContext | None) -> None:
        raise NotImplementedError("this kind of job does not run in a worker")

    @staticmethod
    def warm() -> None:
        """Nothing to import ahead."""

    def prepared(self, signature: str, payload: Any = None, display: str | None = None,
                 sources: tuple[tuple[str, str], ...] = ()) -> Prepared:
        """A ``Prepared`` of this kind, saying where it runs."""
        return Prepared(self.kind, signature, payload, display, in_worker=self.in_worker, sources=sources)


class JobFailed(Exception):
    """Raised inside a worker for a failure that needs no Python traceback."""


def temp_beside(out: str) -> str:
    """Where an action writes ``out`` before renaming it into place: beside it
    (same file system), hidden, and never taken for an output or by a watcher."""
    return os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.flow-tmp")


def sync_file(path: str) -> None:
    """Make a file's bytes durable before a rename says it is done."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
