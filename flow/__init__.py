"""flow: a rule engine for data and ML pipelines.

The package is laid out in three layers, imported one way only:
``flow.grammar`` (text -> AST), ``flow.rules`` (what one job does) and
``flow.engine`` (model, DAG, state, scheduler, executors, CLI).

``FlowError`` is the root of every error flow shows its user. It lives here,
above the three layers, because each of them raises errors under it: the
grammar's ``FlowfileError`` as much as the engine's. The whole tree is drawn
in ``flow/engine/errors.py``. (This module imports nothing: every layer
imports it.)
"""

__version__ = "0.1.0"


class FlowError(Exception):
    """An error flow shows its user: ``render()`` is the text shown, and
    ``exit_code`` flow's exit status (2, a mistake of the user's, unless a
    subclass says otherwise). A handler catches this, and only this."""

    exit_code: int = 2

    def __init__(self, message: str = "", hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint  # what to do about it, on a line of its own

    def __str__(self) -> str:
        return self.message + (f"\n{self.hint}" if self.hint else "")

    def render(self) -> str:
        """The error as shown to people, "flow: error: ..." and the hint."""
        return f"flow: error: {self}"
