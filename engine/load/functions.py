"""The functions a Flowfile defines (``lambda`` and ``def``) as values:
``Function``, which expressions call as in Python and the engine calls per
job (its wildcards, then named values), and ``Unpack``, the mark of
``unpack(fn)``, whose dict (or list) becomes a job's inputs.

A Function runs its body with the evaluator of ``expressions`` within the
budget of ``budget``; calling one has no effect.
"""

from __future__ import annotations

from typing import Any

from flow.grammar import ast

from .budget import _STATE, CALL_STEPS, MAX_CALLS, _budget, _step
from .env import Env
from .signals import EvalError


class Function:
    """A ``lambda`` or ``def`` of a Flowfile: its AST, the Env it closes over
    (the Flowfile's names, and the names of the function or comprehension it
    is written in) and its default values, evaluated where it was written.

    ``call(wildcards, input=..., threads=...)`` is how the engine calls an
    input function, as Snakemake does: the wildcards go to its first
    parameter, and each other parameter takes the named value of its name
    (those it does not declare are left out), else its default. Inside
    expressions it is called as in Python (``f(x)``, ``sorted(L, key=f)``).
    Calling it has no effect; a mistake in it is an ``EvalError`` at the
    expression that failed."""

    __slots__ = ("node", "env", "defaults")

    def __init__(self, node: ast.Lambda | ast.FunctionDef, env: Env, defaults: dict[str, Any]):
        self.node, self.env, self.defaults = node, env, defaults

    @property
    def name(self) -> str:
        return self.node.name if isinstance(self.node, ast.FunctionDef) else "<lambda>"

    @property
    def pos(self) -> ast.Pos:
        return self.node.pos

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.node.params)

    def call(self, wildcards: Any, /, **named: Any) -> Any:
        """The function's value for one job: ``wildcards`` to the first
        parameter, ``named`` values to the parameters of their names."""
        params = self.node.params
        if not params:
            raise EvalError(self.pos, f"{self._label()} takes no parameters, but is called with the wildcards",
                            "An input function takes the wildcards first: lambda wildcards: ...")
        bound = {params[0].name: wildcards}
        for p in params[1:]:
            if p.name in named:
                bound[p.name] = named[p.name]
            elif p.name in self.defaults:
                bound[p.name] = self.defaults[p.name]
            else:
                raise EvalError(self.pos, f"{self._label()}: no value for parameter `{p.name}`",
                                "An input function takes the wildcards, then any of input, output, "
                                "threads, resources by name (or parameters with defaults).")
        with _budget():
            try:
                return self._run(bound)
            except RecursionError:
                raise EvalError(self.pos, f"{self._label()} calls itself too deeply") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _STATE.active:  # called inside an evaluation (f(x), map(f, L)): its budget goes on
            return self._run(self._bind(args, kwargs))
        with _budget():
            return self._run(self._bind(args, kwargs))

    def _bind(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        """The parameters' values for a call as Python makes it (TypeError if they do not fit)."""
        params = self.node.params
        if len(args) > len(params):
            raise TypeError(f"{self._label()} takes {_count(len(params), 'argument')}, not {len(args)}")
        bound = {p.name: a for p, a in zip(params, args, strict=False)}
        for k, v in kwargs.items():
            if k not in self.param_names:
                raise TypeError(f"{self._label()} has no parameter `{k}`")
            if k in bound:
                raise TypeError(f"{self._label()} got two values for parameter `{k}`")
            bound[k] = v
        for p in params:
            if p.name not in bound:
                if p.name not in self.defaults:
                    raise TypeError(f"{self._label()}: no value for parameter `{p.name}`")
                bound[p.name] = self.defaults[p.name]
        return bound

    def _run(self, bound: dict[str, Any]) -> Any:
        # The evaluator imports this module (its lambdas and defs make Functions),
        # so it is imported here, when a Function runs, not when this module loads:
        # no import cycle. After the first run this is a lookup in sys.modules.
        from .expressions import _eval, _exec

        state = _STATE
        if state.calls >= MAX_CALLS:
            raise EvalError(self.pos, f"{self._label()}: functions call each other more than {MAX_CALLS} deep",
                            "A Flowfile function that calls itself must stop before that.")
        _step(self.pos, CALL_STEPS)
        state.calls += 1
        try:
            env = self.env.child(dict(bound))
            if isinstance(self.node, ast.Lambda):
                return _eval(self.node.body, env)
            done, value = _exec(self.node.body, env)
            return value
        finally:
            state.calls -= 1

    def _label(self) -> str:
        return f"function `{self.name}`" if isinstance(self.node, ast.FunctionDef) else "the lambda"

    def __reduce__(self):
        # To a worker (a run: block may call the Flowfile's functions): the names
        # it closes over go along (the same dict for every function, once), the
        # checkpoint guard does not (a worker's glob_wildcards does not wait).
        return (_rebuilt_function, (self.node, self.env.names, self.defaults))

    def __repr__(self) -> str:
        return f"<function {self.name} at {self.pos}>"


def _rebuilt_function(node: ast.Lambda | ast.FunctionDef, names: dict[str, Any],
                      defaults: dict[str, Any]) -> Function:
    return Function(node, Env(names), defaults)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class Unpack:
    """``unpack(fn)``: the input function whose dict (or list) becomes the
    job's named (or positional) inputs, expanded per job by the engine."""

    __slots__ = ("fn",)

    def __init__(self, fn: Function):
        self.fn = fn

    def __repr__(self) -> str:
        return f"unpack({self.fn!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unpack) and other.fn is self.fn

    def __hash__(self) -> int:
        return hash(id(self.fn))
