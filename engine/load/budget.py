"""What one evaluation of a Flowfile expression may cost, and the counter
that holds it to that.

No list or string longer than ``MAX_SIZE``, no integer wider than
``MAX_INT_BITS``, at most ``MAX_STEPS`` steps (a comprehension iteration is
one, a function call ``CALL_STEPS``), functions nested ``MAX_CALLS`` deep at
most: a few seconds of work at most. The counter is per thread, and nested
evaluations (a Flowfile function called inside an expression) share it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flow.grammar import ast

from .signals import EvalError

MAX_SIZE = 10_000_000  # longest list or string an expression may build
MAX_INT_BITS = 1 << 16  # widest integer an expression may make (about 20,000 digits)
MAX_STEPS = 2_000_000  # comprehension iterations (1 each) and function calls (CALL_STEPS each)
CALL_STEPS = 10  # a call costs about ten times an iteration
MAX_CALLS = 50  # functions calling functions (recursion) at most this deep


class _State(threading.local):
    active = False
    steps = 0
    calls = 0


_STATE = _State()


@contextmanager
def _budget() -> Iterator[None]:
    """One evaluation's budget of steps and call depth (nested evaluations share it)."""
    state = _STATE
    if state.active:
        yield
        return
    state.active, state.steps, state.calls = True, 0, 0
    try:
        yield
    finally:
        state.active = False


def _step(pos: ast.Pos, cost: int = 1) -> None:
    state = _STATE
    state.steps += cost
    if state.steps > MAX_STEPS:
        raise EvalError(pos, "the evaluation takes too many steps (comprehension iterations and calls)",
                        "Comprehensions and functions of a Flowfile must stay small.")


_CHARGED = (str, list, tuple, dict, set, frozenset)


def _charge(value: Any, pos: ast.Pos) -> None:
    """A large value made by an operator or a function costs steps by its
    size (one a ten elements), so that no evaluation makes many of them."""
    if isinstance(value, _CHARGED) and len(value) > 1000:
        _step(pos, len(value) // 10)


def _check_size(n: int, pos: ast.Pos) -> None:
    if n > MAX_SIZE:
        raise EvalError(pos, f"the result would have more than {MAX_SIZE:,} elements")
