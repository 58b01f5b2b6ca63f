"""The registry of job kinds: which class stands behind each action directive
(``shell:``, ``run:``, ...) and each kind of job a worker runs.

Each kind is one module of this package, behind the interface in ``base``
(``Action``, ``Runner``). A class is imported when its kind is first asked
for, so importing ``flow.rules`` stays light: the grammar reads
``ACTION_KINDS`` from here, and a Flowfile without a ``duckdb:`` rule never
loads that module. This package never imports the engine.
"""

from __future__ import annotations

import functools
import importlib

from .base import (
    Action,
    ActionBase,
    ActionError,
    JobContext,
    NamedList,
    Namespace,
    Prepared,
    Runner,
)

__all__ = [
    "ACTIONS", "ACTION_KINDS", "CHECKS", "Action", "ActionBase", "ActionError", "JobContext",
    "NamedList", "Namespace", "Prepared", "Runner", "action_class", "runner",
]

# directive -> "module.Class" of this package: the action a rule's directive makes
ACTIONS: dict[str, str] = {
    "shell": "shell.ShellAction",
    "run": "python.RunAction",
    "script": "python.ScriptAction",
    "duckdb": "duckdb.DuckDBAction",
    "mlx": "mlx.MLXAction",
}

# kind -> "module.Class": jobs the scheduler adds on its own, run by a worker
CHECKS: dict[str, str] = {
    "contracts": "contracts.SchemaCheck",  # a rule's schema: checked on its job's outputs
}

ACTION_KINDS: tuple[str, ...] = tuple(ACTIONS)  # the directives that say what a rule's jobs do


def action_class(kind: str) -> type[Action]:
    """The action class of a directive; ``ActionError`` for a name that is none."""
    if kind not in ACTIONS:
        raise ActionError(f"unknown action kind {kind!r} (known: {', '.join(ACTIONS)})")
    return _load(ACTIONS[kind])


def runner(kind: str) -> type[Runner]:
    """How a job of ``kind`` runs (an action's kind, or a check's); ``ActionError`` if unknown."""
    where = ACTIONS.get(kind) or CHECKS.get(kind)
    if where is None:
        raise ActionError(f"unknown kind of job {kind!r} (known: {', '.join([*ACTIONS, *CHECKS])})")
    return _load(where)


@functools.cache
def _load(where: str) -> type:
    module, name = where.rsplit(".", 1)
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
