"""The workflow model: what a loaded Flowfile is made of.

A ``Workflow`` holds ``Rule``s; a rule's paths are ``PathList``s of
``PathSpec`` patterns with their flags. The loader (``loader``) builds these
from the Flowfile; the job graph applies a rule to wildcard values to make a
job, named by ``job_id`` and given its ``job_namespaces``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flow.grammar import ast
from flow.rules import Namespace

from .patterns import Pattern, PatternError, parse_pattern

if TYPE_CHECKING:
    from .env import Env
    from .index import CheckpointGuard


TIE = "rule:"  # a path flag: the input was written as rules.NAME.output, so rule NAME makes it


@dataclass(frozen=True)
class PathSpec:
    """One input/output/log entry: a pattern with flags."""

    pattern: Pattern
    flags: frozenset[str]

    @property
    def text(self) -> str:
        return self.pattern.text


@dataclass
class PathList:
    """Entries of input:, output: or log:, with names for named entries."""

    specs: list[PathSpec]
    names: dict[str, int | tuple[int, int]]

    def format(self, wildcards: dict[str, str]) -> tuple[list[str], dict]:
        return [s.pattern.format(wildcards) for s in self.specs], self.names

    @property
    def patterns(self) -> list[Pattern]:
        return [s.pattern for s in self.specs]


@dataclass
class Rule:
    name: str
    checkpoint: bool
    pos: ast.Pos
    outputs: PathList
    wildcard_names: tuple[str, ...]
    constraints: dict[str, str]
    input_expr: ast.Arguments | None  # kept when inputs wait for a checkpoint
    inputs: PathList | None
    params_expr: ast.Arguments | None
    params: dict[str, Any] | None
    logs: PathList
    benchmark: Pattern | None
    message: str | None
    threads: Any  # a whole number, or a function called for each job
    resources: dict[str, int]
    retries: int
    priority: int
    action: Any  # a flow.rules action, or None for a rule that only gathers
    schema: dict[str, str] | None
    default_target: bool
    directive_pos: dict[str, ast.Pos] = field(default_factory=dict)
    cache: bool = True  # its results may go to and come from a shared cache (--cache); cache: False, nocache:

    def where(self, directive: str | None = None) -> ast.Pos:
        return self.directive_pos.get(directive, self.pos) if directive else self.pos

    @functools.cached_property
    def ancient_inputs(self) -> bool:
        """Whether any input is ancient() (most rules have none: their jobs skip the check)."""
        return self.inputs is None or any("ancient" in s.flags for s in self.inputs.specs)

    @functools.cached_property
    def input_ties(self) -> dict[int, str]:
        """Inputs written as ``rules.NAME.output``: their index -> NAME."""
        ties = {}
        for i, spec in enumerate(self.inputs.specs if self.inputs is not None else ()):
            for f in spec.flags:
                if f.startswith(TIE):
                    ties[i] = f[len(TIE):]
        return ties

    @functools.cached_property
    def per_job_numbers(self) -> bool:
        """Whether threads: or resources: are functions, called for each job."""
        return callable(self.threads) or any(callable(v) for v in self.resources.values())

    @functools.cached_property
    def makes_temp(self) -> bool:
        """Whether flow makes temp() files for its jobs (never for a rule without action)."""
        return self.action is not None and any("temp" in s.flags for s in self.outputs.specs)


@dataclass
class Workflow:
    flowfile: str
    rules: dict[str, Rule]
    ruleorder: list[tuple[str, ...]]
    constraints: dict[str, str]
    localrules: set[str]
    config: dict
    env: Env
    default_target: str | None
    workdir: str
    sources: list[str]  # the Flowfile, its includes and config files
    guard: CheckpointGuard


def job_id(rule: str, wildcards: dict[str, str]) -> str:
    """``rule[k=v,...]``; a value holding ``\\ , = ]`` has them escaped, so two
    jobs never share an id."""
    if not wildcards:
        return rule
    return rule + "[" + ",".join(f"{k}={_escape(str(v))}" for k, v in wildcards.items()) + "]"


_ESCAPES = str.maketrans({c: "\\" + c for c in "\\,=]"})


def _escape(value: str) -> str:
    return value.translate(_ESCAPES)


def job_namespaces(rule: Rule, wildcards: dict[str, str], params: dict[str, Any]) -> tuple[Namespace, Namespace]:
    """The job's ``wildcards`` and ``params`` objects (params strings get the wildcards)."""
    wc = Namespace(wildcards)
    values = {}
    positional = []
    for k, v in params.items():
        v = _format_param(v, wildcards)
        if k.startswith("_") and k[1:].isdigit():
            positional.append(v)
        else:
            values[k] = v
    return wc, Namespace(values, positional)


def _format_param(value: Any, wildcards: dict[str, str]) -> Any:
    if isinstance(value, str):
        try:
            return parse_pattern(value).format(wildcards)
        except PatternError:
            return value
    if isinstance(value, list):
        return [_format_param(v, wildcards) for v in value]
    return value
