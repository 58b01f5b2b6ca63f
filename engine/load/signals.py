"""What evaluating a Flowfile expression raises: ``EvalError`` for a mistake
in the expression (where it is, and a hint), ``CheckpointPending`` when it
needs files that a checkpoint has not made yet; and ``_a``, which their
messages use to name a value's type.

A module of its own, below everything else of the evaluator, so that the
evaluator, the budget, Flowfile functions and the built-ins can all raise
them without importing one another. Neither reaches the user as it is: the
loader and the graph turn an ``EvalError`` into a ``FlowfileError`` (under
the one root, ``FlowError``), and ``CheckpointPending`` only defers work.
"""

from __future__ import annotations

from typing import Any

from flow.grammar import ast


class EvalError(Exception):
    def __init__(self, pos: ast.Pos, message: str, hint: str | None = None):
        super().__init__(message)
        self.pos, self.message, self.hint = pos, message, hint


class CheckpointPending(Exception):
    """An expression needs files inside the output of checkpoint jobs that have
    not completed yet. ``paths`` are those outputs."""

    def __init__(self, paths: set[str]):
        super().__init__(", ".join(sorted(paths)))
        self.paths = paths


def _a(value: Any) -> str:
    """``a list``, ``an int``: the type of ``value`` with its article."""
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"
