"""The names a Flowfile expression sees (``Env``): the Flowfile's top-level
names, then those of the function or comprehension it is written in; and
``Deferred``, a top-level name whose value must wait for a checkpoint.

A leaf module: the evaluator, Flowfile functions (which close over an Env)
and ``glob_wildcards`` (which reports to one) all use it.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flow.grammar import ast


@dataclass
class Deferred:
    """A top-level assignment that must wait for a checkpoint."""

    expr: ast.Expr


@dataclass
class Env:
    names: dict[str, Any] = field(default_factory=dict)
    # called with a directory before glob_wildcards walks it
    guard: Callable[[str], None] | None = None
    globbed: list[Any] = field(default_factory=list)  # each walk of glob_wildcards (a builtins.Glob)

    def child(self, local: dict[str, Any]) -> Env:
        """An Env whose names are ``local``, then these (a function's or a
        comprehension's scope): assignments go to ``local``."""
        return Env(ChainMap(local, self.names), self.guard, self.globbed)
