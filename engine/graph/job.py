"""A job: one rule applied to one set of wildcard values, with the paths
that makes (its outputs, logs and benchmark) and, once the graph has
resolved them, its inputs, params and the jobs it depends on."""

from __future__ import annotations

from typing import Any

from flow.rules import NamedList

from ..load.model import Rule, job_id


class Job:
    """One rule applied to one set of wildcard values."""

    __slots__ = (
        "rule", "wildcards", "id", "outputs", "output_names", "inputs", "input_names",
        "logs", "log_names", "params", "deps", "pending", "benchmark", "threads", "resources",
    )

    def __init__(self, rule: Rule, wildcards: dict[str, str], id: str | None = None):
        self.rule = rule
        self.wildcards = wildcards
        self.id = id or job_id(rule.name, wildcards)
        self.outputs, self.output_names = rule.outputs.format(wildcards)
        self.logs, self.log_names = rule.logs.format(wildcards)
        self.benchmark = rule.benchmark.format(wildcards) if rule.benchmark else None
        self.inputs: list[str] = []
        self.input_names: dict = {}
        self.params: dict[str, Any] = {}
        self.deps: list[Job] = []
        self.pending: set[str] | None = None  # checkpoint outputs it waits for
        self.threads: int = rule.threads  # (the graph calls a rule's threads: or resources: functions)
        self.resources: dict[str, Any] = rule.resources

    def __repr__(self) -> str:
        return f"Job({self.id})"

    @property
    def label(self) -> str:
        """How the job is named to people: ``extract (year=2022)``."""
        if not self.wildcards:
            return self.rule.name
        return f"{self.rule.name} ({', '.join(f'{k}={v}' for k, v in self.wildcards.items())})"

    @property
    def written(self) -> list[str]:
        """Every file the job writes: outputs, logs and its benchmark file."""
        return self.outputs + self.logs + ([self.benchmark] if self.benchmark else [])

    def output_flags(self, i: int) -> frozenset[str]:
        return self.rule.outputs.specs[i].flags

    def input_flags(self, i: int) -> frozenset[str]:
        specs = self._input_specs()
        return specs[i].flags if i < len(specs) else frozenset()

    def _input_specs(self):
        return self.rule.inputs.specs if self.rule.inputs is not None else []

    def named(self, what: str) -> NamedList:
        items, names = {
            "input": (self.inputs, self.input_names),
            "output": (self.outputs, self.output_names),
            "log": (self.logs, self.log_names),
        }[what]
        return NamedList(items, names)
