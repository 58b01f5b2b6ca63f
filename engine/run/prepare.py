"""What a job runs, made ready: its rule's action prepared for the job (the
text its key holds and what the executor runs), the context its Python code
reads, and its ``message:``. Once per job; the rebuilder reads the action's
signature for the key, the scheduler the rest when the job starts.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from typing import Any

from flow.rules import ActionError, JobContext, Namespace, Prepared
from flow.rules.shell import format_command

from ..errors import UserError
from ..graph.job import Job
from ..load.model import Workflow, job_namespaces


class Preparer:
    def __init__(self, workflow: Workflow, cores: int | None = None):
        self.wf = workflow
        self.cores = cores  # a job's {threads} is capped at -j, as in Snakemake
        self.globals = _picklable_globals(workflow)
        self._prepared: dict[str, Prepared] = {}

    def context(self, job: Job) -> JobContext:
        """Everything a Python job's code may read (``_Fields`` makes each name)."""
        f = _Fields(self, job)
        return JobContext(
            rule=f["rule"], input=f["input"], output=f["output"], params=f["params"],
            wildcards=f["wildcards"], threads=f["threads"], resources=f["resources"], log=f["log"],
            config=f["config"], globals=self.globals,
        )

    def prepared(self, job: Job) -> Prepared | None:
        """The job's action, ready to run (None for a rule without one)."""
        if job.rule.action is None:
            return None
        p = self._prepared.get(job.id)
        if p is None:
            # A command needs only the names it formats: build just those (most
            # use input and output only); a worker's job gets the whole
            # context, which is pickled and sent with it.
            ctx = self.context(job) if job.rule.action.in_worker else _CommandContext(self, job)
            try:
                p = job.rule.action.prepare(ctx)
            except ActionError as e:
                raise UserError(f"rule {job.label}: {e}", pos=job.rule.where(job.rule.action.kind)) from None
            self._prepared[job.id] = p
        return p

    def message(self, job: Job) -> str | None:
        """The rule's ``message:`` for this job; as written if it cannot be formatted."""
        if not job.rule.message:
            return None
        try:
            return format_command(job.rule.message, _CommandContext(self, job).format_namespace(), quote=False)
        except ActionError:
            return job.rule.message


class _CommandContext:
    """Stands in for a ``JobContext`` where only a command is formatted."""

    def __init__(self, preparer: Preparer, job: Job):
        self.preparer, self.job = preparer, job

    def format_namespace(self) -> _Fields:
        return _Fields(self.preparer, self.job)


class _Fields(Mapping):
    """The names a command may use (``JobContext.format_namespace``), each
    made when the command first asks for it."""

    _NAMES = ("input", "output", "params", "wildcards", "threads", "resources", "log", "config", "rule")

    def __init__(self, preparer: Preparer, job: Job):
        self.preparer, self.job = preparer, job
        self.made: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.made:
            if name not in self._NAMES:
                raise KeyError(name)
            self.made[name] = self._make(name)
        return self.made[name]

    def _make(self, name: str) -> Any:
        job, p = self.job, self.preparer
        if name in ("input", "output", "log"):
            return job.named(name)
        if name in ("params", "wildcards"):
            wildcards, params = job_namespaces(job.rule, job.wildcards, job.params)
            self.made["wildcards"] = wildcards
            return params if name == "params" else wildcards
        if name == "threads":
            return min(job.threads, p.cores) if p.cores else job.threads
        if name == "resources":
            return Namespace(job.resources)
        return p.wf.config if name == "config" else job.rule.name

    def __contains__(self, name: object) -> bool:
        return name in self._NAMES

    def __iter__(self) -> Iterator[str]:
        return iter(self._NAMES)

    def __len__(self) -> int:
        return len(self._NAMES)


def _picklable_globals(workflow: Workflow) -> dict[str, Any]:
    """Top-level names a run: block may use (those a worker can receive)."""
    out = {}
    for name, value in workflow.env.names.items():
        if name == "config" or type(value).__name__ == "Deferred":
            continue
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            value = tuple(value)
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - anything unpicklable simply stays out
            continue
        out[name] = value
    return out
