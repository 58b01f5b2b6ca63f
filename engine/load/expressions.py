"""Evaluation of Flowfile expressions (the AST from flow.grammar).

Pure by construction: literals, names, operators, comparisons, conditional
expressions, f-strings, comprehensions, the built-in functions below, the
read-only methods of strings, lists and dicts (``PURE_METHODS``), the pure
``os.path`` helpers, and functions the Flowfile defines (``lambda`` and
``def``), which evaluate to ``Function`` values that the engine calls per
job with ``Function.call``. Nothing here writes, and ``glob_wildcards`` is
the only one that looks at the file system: when it looks inside a
checkpoint's output before that checkpoint has run it raises
``CheckpointPending`` so that the engine can evaluate again later.

Objects of the engine may take part: one with a ``flow_attribute(name)``
method answers ``obj.name``, one with ``flow_method(name)`` (returning a
callable, or None) answers ``obj.name(...)``.

This module is the evaluator: ``evaluate`` and a handler for each kind of
node. Beside it: the names it sees (``env``), the built-ins (``builtins``),
Flowfile functions (``functions``), what calls and operators do with values
(``operations``), its bounds (``budget``) and errors (``errors``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from flow.grammar import BUILTIN_FUNCTIONS, DECLARATIVE_HINT, ast
from flow.rules import NamedList

from .budget import MAX_CALLS, _budget, _check_size, _step
from .builtins import _PLAIN_FUNCTIONS, PURE_OS, FlaggedPath, _Globber, expand, glob_wildcards
from .env import Deferred, Env
from .functions import Function, Unpack
from .operations import _COMPARE, _apply, _arithmetic, _get_attribute, _invoke, _method
from .signals import CheckpointPending, EvalError, _a

__all__ = [  # what other modules and the tests import from here
    "MAX_CALLS", "CheckpointPending", "Deferred", "Env", "EvalError", "FlaggedPath", "Function",
    "Unpack", "evaluate", "expand", "glob_wildcards",
]


def evaluate(expr: ast.Expr, env: Env) -> Any:
    with _budget():
        try:
            return _eval(expr, env)
        except (EvalError, CheckpointPending):
            raise
        except RecursionError:
            raise EvalError(expr.pos, "expression nested too deeply") from None


def _eval(e: ast.Expr, env: Env) -> Any:
    handler = _HANDLERS.get(type(e))
    if handler is None:
        raise EvalError(e.pos, f"unsupported expression {type(e).__name__}")  # pragma: no cover
    return handler(e, env)


def _const(e: ast.Const, env: Env) -> Any:
    return e.value


def _items(items: tuple[ast.Expr, ...], env: Env) -> list:
    out: list = []
    for item in items:
        if isinstance(item, ast.Starred):
            out.extend(_iterate(_eval(item.value, env), item.pos))
            _check_size(len(out), item.pos)
        else:
            out.append(_eval(item, env))
    return out


def _list(e: ast.ListExpr, env: Env) -> list:
    return _items(e.items, env)


def _tuple(e: ast.TupleExpr, env: Env) -> tuple:
    return tuple(_items(e.items, env))


def _set(e: ast.SetExpr, env: Env) -> set:
    values = _items(e.items, env)
    try:
        return set(values)
    except TypeError as err:
        raise EvalError(e.pos, f"a set cannot hold it: {err}") from None


def _dict(e: ast.DictExpr, env: Env) -> dict:
    out = {}
    for k, v in e.items:
        if k is None:
            out.update(_mapping(_eval(v, env), v.pos))
            continue
        key = _eval(k, env)
        try:
            out[key] = _eval(v, env)
        except TypeError:
            raise EvalError(k.pos, f"{_a(key)} cannot be a dict key") from None
    return out


def _mapping(value: Any, pos: ast.Pos) -> dict:
    """The names and values of ``**value``: a dict, or named entries (``**wildcards``)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, NamedList):
        return dict(value.items())
    raise EvalError(pos, f"** takes a dict or named values, not {_a(value)}")


def _subscript(e: ast.Subscript, env: Env) -> Any:
    value = _eval(e.value, env)
    if isinstance(e.index, ast.Slice):
        index = _slice(e.index, env)
    else:
        index = _eval(e.index, env)
    try:
        return value[index]
    except KeyError:
        raise EvalError(e.index.pos, f"no key {index!r}", _keys_hint(value)) from None
    except IndexError:
        raise EvalError(e.index.pos, f"index {index!r} is out of range (length {len(value)})") from None
    except (TypeError, ValueError) as err:
        raise EvalError(e.pos, f"cannot subscript: {err}") from None


def _slice(e: ast.Slice, env: Env) -> slice:
    parts = []
    for part in (e.lower, e.upper, e.step):
        v = None if part is None else _eval(part, env)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise EvalError(part.pos, f"a slice takes whole numbers, not {type(v).__name__}")
        parts.append(v)
    return slice(*parts)


def _attribute(e: ast.Attribute, env: Env) -> Any:
    return _get_attribute(e, _eval(e.value, env))


def _unary(e: ast.UnaryOp, env: Env) -> Any:
    v = _eval(e.operand, env)
    if e.op == "not":
        return not v
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        verb = "negate" if e.op == "-" else "apply unary + to"
        raise EvalError(e.pos, f"cannot {verb} {_a(v)}")
    return -v if e.op == "-" else +v


def _boolop(e: ast.BoolOp, env: Env) -> Any:
    value = None
    for operand in e.values:
        value = _eval(operand, env)
        if (e.op == "and" and not value) or (e.op == "or" and value):
            return value
    return value


def _compare(e: ast.Compare, env: Env) -> bool:
    left = _eval(e.left, env)
    for op, right_expr in zip(e.ops, e.comparators, strict=True):
        right = _eval(right_expr, env)
        try:
            ok = _COMPARE[op](left, right)
        except TypeError as err:
            raise EvalError(right_expr.pos, f"`{op}`: {err}") from None
        if not ok:
            return False
        left = right
    return True


def _ifexp(e: ast.IfExp, env: Env) -> Any:
    return _eval(e.body, env) if _eval(e.test, env) else _eval(e.orelse, env)


_HUGE_SPEC = re.compile(r"\d{5,}")  # a width or precision of 10000 or more


def _joined(e: ast.JoinedStr, env: Env) -> str:
    parts = []
    size = 0
    for v in e.values:
        text = _eval(v, env)
        size += len(text)
        _check_size(size, e.pos)
        parts.append(text)
    return "".join(parts)


def _formatted(e: ast.FormattedValue, env: Env) -> str:
    value = _eval(e.value, env)
    if e.conversion == "r":
        value = repr(value)
    elif e.conversion == "s":
        value = str(value)
    elif e.conversion == "a":
        value = ascii(value)
    spec = "" if e.format_spec is None else _eval(e.format_spec, env)
    if _HUGE_SPEC.search(spec):
        raise EvalError(e.pos, f"f-string: the format width or precision in {spec[:80]!r} is too large")
    try:
        return format(value, spec)
    except (TypeError, ValueError) as err:
        raise EvalError(e.pos, f"f-string: {err}") from None


def _comprehension(e: ast.Comprehension, env: Env) -> Any:
    scope = env.child({})
    out: list = []
    result: Any = {} if e.kind == "dict" else out

    def run(level: int) -> None:
        if level == len(e.generators):
            if e.kind == "dict":
                key = _eval(e.key, scope)
                try:
                    result[key] = _eval(e.elt, scope)
                except TypeError:
                    raise EvalError(e.key.pos, f"{_a(key)} cannot be a dict key") from None
            else:
                out.append(_eval(e.elt, scope))
            _check_size(len(result), e.pos)
            return
        gen = e.generators[level]
        for item in _iterate(_eval(gen.iter, scope), gen.iter.pos):
            _step(gen.iter.pos)
            _assign(gen.target, item, scope.names.maps[0])
            if all(_eval(cond, scope) for cond in gen.ifs):
                run(level + 1)

    run(0)
    if e.kind == "set":
        try:
            return set(out)
        except TypeError as err:
            raise EvalError(e.pos, f"a set cannot hold it: {err}") from None
    return result


def _iterate(value: Any, pos: ast.Pos) -> Any:
    """``value`` to loop over or unpack: a list, tuple, string, dict, set or range."""
    if isinstance(value, (list, tuple, str, dict, set, frozenset, range, type({}.keys()),
                          type({}.values()), type({}.items()))):
        return value
    raise EvalError(pos, f"{_a(value)} cannot be looped over")


def _assign(target: ast.Expr, value: Any, scope: dict[str, Any]) -> None:
    """Bind ``target`` (a name, or a tuple or list of targets) to ``value``."""
    if isinstance(target, ast.Name):
        scope[target.id] = value
        return
    items = list(_iterate(value, target.pos))
    targets = target.items
    star = next((i for i, t in enumerate(targets) if isinstance(t, ast.Starred)), None)
    if star is None:
        if len(items) != len(targets):
            raise EvalError(target.pos, f"cannot unpack {len(items)} values into {len(targets)} names")
        for t, v in zip(targets, items, strict=True):
            _assign(t, v, scope)
        return
    after = len(targets) - star - 1
    if len(items) < star + after:
        raise EvalError(target.pos, f"cannot unpack {len(items)} values into {len(targets) - 1} or more names")
    for t, v in zip(targets[:star], items[:star], strict=True):
        _assign(t, v, scope)
    _assign(targets[star].value, items[star:len(items) - after], scope)
    for t, v in zip(targets[star + 1:], items[len(items) - after:], strict=True):
        _assign(t, v, scope)


def _function(e: ast.Lambda | ast.FunctionDef, env: Env) -> Function:
    defaults = {p.name: _eval(p.default, env) for p in e.params if p.default is not None}
    return Function(e, env, defaults)


def _exec(body: tuple[ast.Expr, ...], env: Env) -> tuple[bool, Any]:
    """Run a def body's statements: (True, value) once one returns."""
    scope = env.names.maps[0]
    for stmt in body:
        if isinstance(stmt, ast.LocalAssign):
            _assign(stmt.target, _eval(stmt.value, env), scope)
        elif isinstance(stmt, ast.Return):
            return True, None if stmt.value is None else _eval(stmt.value, env)
        elif isinstance(stmt, ast.If):
            done, value = _exec(stmt.body if _eval(stmt.test, env) else stmt.orelse, env)
            if done:
                return True, value
        elif isinstance(stmt, ast.ExprStmt):
            _eval(stmt.value, env)
    return False, None


def _unpack_item(e: ast.UnpackItem, env: Env) -> Any:
    items = list(_iterate(_eval(e.value, env), e.value.pos))
    if len(items) != e.count:
        raise EvalError(e.value.pos, f"cannot unpack {len(items)} values into {e.count} names")
    return items[e.index]


def _starred(e: ast.Starred, env: Env) -> Any:
    raise EvalError(e.pos, "a starred value (*x) can stand only in a list, tuple, set or call")


def _keys_hint(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = ", ".join(repr(k) for k in list(value)[:10])
        return f"Known keys: {keys}." if keys else "The dict is empty."
    return None


def _lookup(e: ast.Name, env: Env) -> Any:
    if e.id in env.names:
        value = env.names[e.id]
        if isinstance(value, Deferred):
            return _eval(value.expr, env)
        if value is os or value is os.path:
            return PURE_OS if value is os else PURE_OS.flow_attribute("path")
        return value
    if e.id == "os":
        return PURE_OS
    if e.id == "glob_wildcards":
        return _Globber(env)
    if e.id in _PLAIN_FUNCTIONS:
        return _PLAIN_FUNCTIONS[e.id]
    raise EvalError(e.pos, f"name `{e.id}` is not defined",
                    "Assign it at the top level before its first use (NAME = value).")


def _binop(e: ast.BinOp, env: Env) -> Any:
    return _arithmetic(e, _eval(e.left, env), _eval(e.right, env))


def _call(e: ast.Call, env: Env) -> Any:
    args: list = []
    for a in e.args:
        if isinstance(a, ast.Starred):
            args.extend(_iterate(_eval(a.value, env), a.pos))
        else:
            args.append(_eval(a, env))
    kwargs: dict[str, Any] = {}
    for k in e.kwargs:
        pairs = _mapping(_eval(k.value, env), k.value.pos).items() if k.name is None \
            else ((k.name, _eval(k.value, env)),)
        for name, value in pairs:
            if not isinstance(name, str):
                raise EvalError(k.value.pos, "keyword argument names must be strings")
            if name in kwargs:
                raise EvalError(k.value.pos, f"keyword argument `{name}` repeated")
            kwargs[name] = value
    func = e.func
    if isinstance(func, ast.Attribute):
        return _apply(e, _method(func, _eval(func.value, env)), args, kwargs)
    if isinstance(func, ast.Name) and func.id not in env.names and func.id not in _PLAIN_FUNCTIONS \
            and func.id not in ("glob_wildcards", "os"):
        raise EvalError(func.pos, f"unknown function `{func.id}`",
                        "Flowfile expressions may call: " + ", ".join(sorted(BUILTIN_FUNCTIONS))
                        + ", and the functions the Flowfile defines (def, lambda).\n" + DECLARATIVE_HINT)
    return _invoke(e, _eval(func, env), args, kwargs)


_HANDLERS: dict[type, Callable[[Any, Env], Any]] = {
    ast.Const: _const,
    ast.Name: _lookup,
    ast.ListExpr: _list,
    ast.TupleExpr: _tuple,
    ast.SetExpr: _set,
    ast.DictExpr: _dict,
    ast.Subscript: _subscript,
    ast.Attribute: _attribute,
    ast.BinOp: _binop,
    ast.UnaryOp: _unary,
    ast.BoolOp: _boolop,
    ast.Compare: _compare,
    ast.IfExp: _ifexp,
    ast.JoinedStr: _joined,
    ast.FormattedValue: _formatted,
    ast.Comprehension: _comprehension,
    ast.Lambda: _function,
    ast.FunctionDef: _function,
    ast.UnpackItem: _unpack_item,
    ast.Starred: _starred,
    ast.Call: _call,
}
