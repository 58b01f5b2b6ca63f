"""What the operators and calls of a Flowfile expression do with values
already evaluated: arithmetic and ``%`` formatting (refused if the result
would be too large), comparisons, attribute access (``_get_attribute``),
calls of a Flowfile function or a built-in (``_invoke``) or of a read-only
method of a string, list or dict (``_method``). Before a call, what would
make a value too large is refused (``_check_call``: format widths, joins,
replaces, paddings); after it, what it returns is checked (``_apply``:
ranges and iterators become lists within bounds).

The evaluator (``expressions``) evaluates operands, arguments and callees,
then hands the values here: this module needs nothing from it, so the two
import in one direction only.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from flow.grammar import PURE_METHODS, ast
from flow.rules import NamedList

from .budget import MAX_INT_BITS, MAX_SIZE, _charge, _check_size
from .builtins import _CALLABLE_IDS, _Globber
from .functions import Function, Unpack
from .signals import CheckpointPending, EvalError, _a

_METHOD_TYPES = (str, dict, list, tuple, set, frozenset)
_ITERATORS = (map, filter, zip, enumerate, reversed, type(iter(())), type(iter([])), type(iter("")))


def _arithmetic(e: ast.BinOp, a: Any, b: Any) -> Any:
    """``a op b`` (the operands evaluated), refused if the result would be too large."""
    op = e.op
    for v in (a, b) if not (op == "%" and isinstance(a, str)) else (a,):
        if not isinstance(v, (str, int, float, list, tuple)):
            raise EvalError(e.pos, f"`{op}` does not apply to {_a(v)}")
    if op == "*":
        n = b if isinstance(a, (str, list, tuple)) else a
        seq = a if isinstance(a, (str, list, tuple)) else b
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_SIZE:
            raise EvalError(e.pos, f"the result would have {len(seq) * n} elements")
    if op == "+" and isinstance(a, (str, list, tuple)) and isinstance(b, (str, list, tuple)) \
            and len(a) + len(b) > MAX_SIZE:
        raise EvalError(e.pos, f"the result would have {len(a) + len(b)} elements")
    if op == "%" and isinstance(a, str):
        return _percent_format(e, a, b)
    try:
        result = _ARITHMETIC[op](a, b)
    except (TypeError, ZeroDivisionError, OverflowError) as err:
        raise EvalError(e.pos, f"`{op}`: {err}") from None
    if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
        raise EvalError(e.pos, f"`{op}`: the number would have more than {MAX_INT_BITS:,} bits")
    _charge(result, e.pos)
    return result


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod,
}


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge, "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
    "is": operator.is_, "is not": operator.is_not,
}


def _get_attribute(e: ast.Attribute, value: Any) -> Any:
    """``value.attr``: what an object of the engine (or os) says it has, a
    named tuple's or named list's entry; a method not called is refused."""
    hook = getattr(type(value), "flow_attribute", None)
    if hook is not None:  # an object of the engine's (or os): it says what it has
        try:
            return hook(value, e.attr)
        except (AttributeError, KeyError) as err:
            raise EvalError(e.pos, str(err).strip("'\"")) from None
    if isinstance(value, tuple) and hasattr(value, "_fields") and e.attr in value._fields:
        return getattr(value, e.attr)
    if isinstance(value, NamedList):
        if e.attr in value.keys():
            return getattr(value, e.attr)
        names = ", ".join(value.keys())
        raise EvalError(e.pos, f"{type(value).__name__} has no attribute `{e.attr}`",
                        f"Its names: {names}." if names else None)
    if isinstance(value, _METHOD_TYPES) and e.attr in PURE_METHODS:
        raise EvalError(e.pos, f"`.{e.attr}` is a method: call it (`.{e.attr}(...)`)")
    raise EvalError(e.pos, f"{type(value).__name__} has no attribute `{e.attr}`")


_HUGE_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(?:\d{5,}|\*|\d*\.(?:\d{5,}|\*))")


def _percent_format(e: ast.BinOp, text: str, values: Any) -> str:
    """``"%s_%d" % (a, b)``, as Python formats it; a width or precision of
    10000 or more, or one taken from the values (``*``), is refused."""
    if _HUGE_PERCENT.search(text):
        raise EvalError(e.pos, f"`%`: a format width or precision in {text[:80]!r} is too large")
    if not isinstance(values, (str, int, float, tuple, dict, list)) and values is not None:
        raise EvalError(e.pos, f"`%` does not format {_a(values)}")
    try:
        return text % values
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise EvalError(e.pos, f"`%`: {err}") from None


def _invoke(e: ast.Call, fn: Any, args: list, kwargs: dict) -> Any:
    """Call ``fn``, the value of the name ``e`` calls: a Flowfile function or
    a built-in (anything else is refused)."""
    if isinstance(fn, Function):  # (Function._run bounds how deep calls go)
        try:
            return fn(*args, **kwargs)
        except TypeError as err:  # the arguments do not fit its parameters
            raise EvalError(e.pos, str(err)) from None
    if id(fn) in _CALLABLE_IDS or isinstance(fn, _Globber):
        return _apply(e, fn, args, kwargs)
    if isinstance(fn, Unpack):
        raise EvalError(e.func.pos, "an unpack() value is not a function")
    raise EvalError(e.func.pos, f"{_a(fn)} is not a function")


def _method(func: ast.Attribute, target: Any) -> Callable[..., Any]:
    name = func.attr
    hook = getattr(type(target), "flow_method", None)
    if hook is not None:
        method = hook(target, name)
        if method is None:
            raise EvalError(func.pos, f"{type(target).__name__} has no method `{name}` here")
        return method
    if not isinstance(target, _METHOD_TYPES) or name not in PURE_METHODS:
        raise EvalError(func.pos, f"{type(target).__name__} has no method `{name}` here")
    method = getattr(target, name, None)
    if method is None:
        raise EvalError(func.pos, f"{type(target).__name__} has no method `{name}`")
    return method


def _callee(e: ast.Call) -> str:
    if isinstance(e.func, ast.Name):
        return e.func.id
    if isinstance(e.func, ast.Attribute):
        return e.func.attr
    return "this value"


_HUGE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\d{5,}[^{}]*\}")  # a width or precision of 10000 or more
_NESTED_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\{")  # a width taken from another argument
_PRIVATE_FIELD = re.compile(r"\{[^{}!:]*[.\[]\s*_")  # {0.__class__}: past the values
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _apply(e: ast.Call, fn: Callable[..., Any], args: list, kwargs: dict) -> Any:
    name = _callee(e)
    _check_call(e, name, fn, args)
    try:
        result = fn(*args, **kwargs)
    except (CheckpointPending, EvalError):
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as err:
        text = str(err)
        raise EvalError(e.pos, text if text.startswith(f"{name}(") else f"{name}(): {text}") from None
    if isinstance(result, range):
        try:
            too_long = len(result) > MAX_SIZE
        except OverflowError:
            too_long = True
        if too_long:
            raise EvalError(e.pos, "range() of more than 10,000,000 numbers is too long")
        return list(result)
    if isinstance(result, _ITERATORS):  # (lazy: map()'s function runs only now)
        out = []
        try:
            for item in result:
                out.append(item)
                _check_size(len(out), e.pos)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as err:
            raise EvalError(e.pos, f"{name}(): {err}") from None
        _charge(out, e.pos)
        return out
    if isinstance(result, int) and not isinstance(result, bool) and result.bit_length() > MAX_INT_BITS:
        raise EvalError(e.pos, f"{name}(): the number would have more than {MAX_INT_BITS:,} bits")
    _charge(result, e.pos)
    return result


def _check_call(e: ast.Call, name: str, fn: Callable[..., Any], args: list) -> None:
    """Refuse, before the call, what would make a value too large to hold."""
    owner = getattr(fn, "__self__", None)
    if name in ("format", "expand"):
        for text in [owner, *args] if name == "format" else args[:1]:
            for t in text if isinstance(text, list) else [text]:
                if not isinstance(t, str):
                    continue
                if _HUGE_FORMAT.search(t) or (name == "format" and _NESTED_FORMAT.search(t)):
                    raise EvalError(e.pos, f"{name}(): a format width or precision in {t[:80]!r} is too large")
                if name == "format" and _PRIVATE_FIELD.search(t):
                    raise EvalError(e.pos, f"{name}(): a field in {t[:80]!r} reaches a private attribute")
    if name == "sum" and len(args) > 1 and isinstance(args[1], (list, tuple)) and isinstance(args[0], list):
        _check_size(len(args[1]) + sum(len(x) for x in args[0] if isinstance(x, (list, tuple))), e.pos)
    if not isinstance(owner, str):
        return
    if name == "join":
        items = args[0] if args else ()
        if isinstance(items, (list, tuple)):
            total = sum(len(x) for x in items if isinstance(x, str)) + len(owner) * max(len(items) - 1, 0)
            _check_size(total, e.pos)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = owner.count(args[0]) if args[0] else len(owner) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        _check_size(len(owner) + count * (len(args[1]) - len(args[0])), e.pos)
    elif name in _WIDTH_METHODS and args and isinstance(args[0], int):
        width = args[0] * (len(owner) if name == "expandtabs" else 1)
        _check_size(width, e.pos)
