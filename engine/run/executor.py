"""Executors run prepared jobs; the scheduler decides which and when.

The interface is four calls (``submit``, ``wait``, ``cancel``, ``shutdown``)
and two records (``Task`` in, ``Completion`` out), so that a distributed
backend can stand in for the local one without touching the scheduler.
A job with a ``benchmark:`` is named to ``benchmark`` before it is
submitted: its completion then says what it used (``processes.Usage``).
The local executor, a process pool, is ``local.LocalExecutor``; the Dask
executor, ``cluster.DaskExecutor``, sends jobs to a Dask cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from flow.rules import runner

from .processes import Usage


@dataclass
class Task:
    job_id: str
    kind: str  # what the worker runs it as: "run", "duckdb", "contracts", ... (flow.rules)
    payload: Any
    ctx: Any = None  # flow.rules.JobContext for Python kinds
    in_worker: bool | None = None  # Prepared.in_worker; None: as the kind's registry entry says
    threads: int = 1  # what it takes of a machine: a cluster places it by these (cluster.DaskExecutor)
    resources: dict[str, Any] = field(default_factory=dict)
    local: bool = False  # localrules: never sent away from this machine
    outputs: tuple[str, ...] = ()  # what it writes: removed again before each attempt elsewhere

    def __post_init__(self) -> None:
        if self.in_worker is None:
            self.in_worker = runner(self.kind).in_worker


@dataclass
class Completion:
    job_id: str
    ok: bool
    error: str | None = None
    returncode: int | None = None
    stderr_tail: str | None = None  # the last lines the job wrote to stderr
    usage: Usage | None = None  # what it used, as far as it was measured

    @property
    def max_rss_kb(self) -> int | None:
        return self.usage.max_rss_kb if self.usage else None

    @property
    def cpu_seconds(self) -> float | None:
        return self.usage.cpu_seconds if self.usage else None


class Executor(Protocol):
    def submit(self, task: Task) -> None: ...

    def wait(self, timeout: float | None) -> list[Completion]: ...

    def cancel(self, job_id: str) -> None: ...

    def shutdown(self) -> None: ...

    def hurry(self) -> None: ...

    def warm(self, kinds: set[str]) -> None: ...

    def benchmark(self, job_id: str) -> None:
        """Measure the next run of this job fully, for its ``benchmark:`` file."""
