"""Rule action kinds, one module each, behind one interface (``base``).

The engine builds an action per rule with ``action_for`` and asks it to
``prepare`` each job. This package never imports the engine.
"""

from __future__ import annotations

from .base import ActionError, JobContext, NamedList, Namespace, Prepared
from .python import RunAction, ScriptAction
from .shell import ShellAction

__all__ = [
    "ActionError", "JobContext", "NamedList", "Namespace", "Prepared",
    "RunAction", "ScriptAction", "ShellAction", "action_for_kind",
]


def action_for_kind(kind: str, text: str):
    """The action for a ``duckdb:`` or ``mlx:`` directive."""
    if kind == "duckdb":
        from .duckdb import DuckDBAction

        return DuckDBAction(text)
    if kind == "mlx":
        from .mlx import MLXAction

        return MLXAction(text)
    raise ActionError(f"unknown action kind {kind!r}")
