"""Evaluation of Flowfile expressions (the AST from flow.grammar).

Pure by construction: only literals, names, a few operators, the built-in
functions below and a handful of read-only methods. ``glob_wildcards`` is
the only one that looks at the file system, and when it looks inside a
checkpoint's output before that checkpoint has run it raises
``CheckpointPending`` so that the engine can evaluate again later.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flow.grammar import PURE_METHODS, ast
from flow.rules import NamedList

from .patterns import PatternError, parse_pattern

MAX_SIZE = 10_000_000  # longest list or string an expression may build


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


class FlaggedPath(str):
    """A path with flags: temp, protected, directory, ancient, touch."""

    flags: frozenset[str] = frozenset()

    def __new__(cls, value: str, flags: frozenset[str]):
        obj = super().__new__(cls, value)
        obj.flags = flags
        return obj

    def __reduce__(self):
        return (FlaggedPath, (str(self), self.flags))


def flag(value: Any, name: str) -> Any:
    if isinstance(value, (list, tuple)):
        return [flag(v, name) for v in value]
    if not isinstance(value, str):
        raise TypeError(f"{name}() takes a path (a string), not {type(value).__name__}")
    old = value.flags if isinstance(value, FlaggedPath) else frozenset()
    return FlaggedPath(str(value), old | {name})


class ZipMarker:
    """``zip`` as the second argument of ``expand``."""

    def __repr__(self) -> str:
        return "zip"


ZIP = ZipMarker()


def expand(patterns: Any, *combinators: Any, allow_missing: bool = False, **lists: Any) -> list[str]:
    """Snakemake's expand: the product (or zip) of ``lists`` formatted into each pattern."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if combinators and not all(c is ZIP for c in combinators):
        raise TypeError("expand() takes a pattern, optionally `zip`, then name=list arguments")
    out: list[str] = []
    for pattern in patterns:
        # Each pattern takes only the lists of the wildcards it has, as in Snakemake.
        fields = _fields(str(pattern))
        names = [n for n in lists if n in fields]
        values = [_as_list(lists[n]) for n in names]
        if combinators:
            if len({len(v) for v in values}) > 1:
                raise TypeError("expand(..., zip, ...) needs lists of equal length")
            combos = list(zip(*values, strict=True))
        else:
            total = 1
            for v in values:
                total *= len(v)
            if total > MAX_SIZE:
                raise TypeError(f"expand() would make {total} paths")
            combos = list(itertools.product(*values))
        for combo in combos:
            out.append(_format_expand(str(pattern), dict(zip(names, combo, strict=True)), allow_missing))
    return out


def _fields(pattern: str) -> set[str]:
    import string

    try:
        return {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(pattern) if f}
    except ValueError as e:
        raise TypeError(f"cannot format {pattern!r}: {e}") from None


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _format_expand(pattern: str, values: dict[str, Any], allow_missing: bool) -> str:
    try:
        if allow_missing:
            # keep unknown wildcards (and their constraints) as they are
            return re.sub(
                r"\{\{|\}\}|\{([^{}]*)\}",
                lambda m: _keep_or_fill(m, values),
                pattern,
            )
        return pattern.format(**values)
    except KeyError as e:
        raise TypeError(f"no values for wildcard {{{e.args[0]}}} in {pattern!r}") from None
    except (IndexError, ValueError) as e:
        raise TypeError(f"cannot format {pattern!r}: {e}") from None


def _keep_or_fill(m: re.Match, values: dict[str, Any]) -> str:
    if m.group(0) in ("{{", "}}"):
        return m.group(0)[0]
    name = m.group(1).split(",")[0].split(":")[0].strip()
    if name in values:
        return ("{" + m.group(1) + "}").format(**values)
    return m.group(0)


def _as_list(value: Any) -> list:
    if isinstance(value, (list, tuple, range)):
        return list(value)
    return [value]


def multiext(stem: str, *exts: str) -> list[str]:
    return [stem + e for e in exts]


def glob_wildcards(pattern: str, files: list[str] | None = None,
                   guard: Callable[[str], None] | None = None,
                   seen: list[tuple[str, Any]] | None = None) -> Any:
    """The values of each wildcard over existing files (and directories) that match."""
    try:
        parsed = parse_pattern(pattern)
    except PatternError as e:
        raise TypeError(str(e)) from None
    regex = parsed.regex({})
    Result = namedtuple("Wildcards", parsed.names, rename=True)  # type: ignore[misc]
    if files is None:
        prefix = parsed.prefix if parsed.names else parsed.text
        base = os.path.dirname(prefix) or "."
        if guard is not None:
            guard(base)
        if seen is not None:  # (flow watch watches these directories for new matches)
            seen.append((base, regex))
        files = []
        if os.path.isdir(base):
            # The directories above each one walked: a symbolic link back to one of them is a loop.
            above: dict[str, tuple[tuple[int, int], ...]] = {}
            for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
                st = os.stat(dirpath)
                chain = above.pop(dirpath, ())
                if (st.st_dev, st.st_ino) in chain:
                    dirnames[:] = []
                    continue
                chain += ((st.st_dev, st.st_ino),)
                dirnames[:] = [d for d in dirnames if not (dirpath == "." and d == ".flow")]
                for d in dirnames:
                    above[os.path.join(dirpath, d)] = chain
                for f in itertools.chain(filenames, dirnames):
                    path = os.path.join(dirpath, f)
                    files.append(path[2:] if base == "." and path.startswith("./") else path)
        files.sort()
    found: list[list[str]] = [[] for _ in parsed.names]
    for f in files:
        m = regex.match(f)
        if m:
            for i, name in enumerate(parsed.names):
                found[i].append(m.group(name))
    return Result(*found)


@dataclass
class Deferred:
    """A top-level assignment that must wait for a checkpoint."""

    expr: ast.Expr


@dataclass
class Env:
    names: dict[str, Any] = field(default_factory=dict)
    # called with a directory before glob_wildcards walks it
    guard: Callable[[str], None] | None = None
    globbed: list[tuple[str, Any]] = field(default_factory=list)  # (directory, regex) of each glob_wildcards


_PLAIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "range": range, "len": len, "str": str, "int": int, "float": float, "bool": bool,
    "sorted": sorted, "list": list, "min": min, "max": max, "abs": abs, "multiext": multiext,
    "expand": expand,
}
_FLAGS = ("temp", "protected", "directory", "ancient", "touch")
_METHOD_TYPES = (str, dict, list, tuple)


def evaluate(expr: ast.Expr, env: Env) -> Any:
    try:
        return _eval(expr, env)
    except (EvalError, CheckpointPending):
        raise
    except RecursionError:
        raise EvalError(expr.pos, "expression nested too deeply") from None


def _eval(e: ast.Expr, env: Env) -> Any:
    if isinstance(e, ast.Const):
        return e.value
    if isinstance(e, ast.Name):
        return _lookup(e, env)
    if isinstance(e, ast.ListExpr):
        return [_eval(i, env) for i in e.items]
    if isinstance(e, ast.TupleExpr):
        return tuple(_eval(i, env) for i in e.items)
    if isinstance(e, ast.DictExpr):
        out = {}
        for k, v in e.items:
            key = _eval(k, env)
            try:
                out[key] = _eval(v, env)
            except TypeError:
                raise EvalError(k.pos, f"a {type(key).__name__} cannot be a dict key") from None
        return out
    if isinstance(e, ast.Subscript):
        value, index = _eval(e.value, env), _eval(e.index, env)
        try:
            return value[index]
        except KeyError:
            raise EvalError(e.index.pos, f"no key {index!r}", _keys_hint(value)) from None
        except IndexError:
            raise EvalError(e.index.pos, f"index {index!r} is out of range (length {len(value)})") from None
        except TypeError as err:
            raise EvalError(e.pos, f"cannot subscript: {err}") from None
    if isinstance(e, ast.Attribute):
        value = _eval(e.value, env)
        if isinstance(value, tuple) and hasattr(value, "_fields") and e.attr in value._fields:
            return getattr(value, e.attr)
        if isinstance(value, NamedList) and e.attr in value.keys():
            return getattr(value, e.attr)
        raise EvalError(e.pos, f"{type(value).__name__} has no attribute `{e.attr}`")
    if isinstance(e, ast.BinOp):
        return _binop(e, _eval(e.left, env), _eval(e.right, env))
    if isinstance(e, ast.UnaryOp):
        v = _eval(e.operand, env)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise EvalError(e.pos, f"cannot negate a {type(v).__name__}")
        return -v
    if isinstance(e, ast.Call):
        return _call(e, env)
    raise EvalError(e.pos, f"unsupported expression {type(e).__name__}")  # pragma: no cover


def _keys_hint(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = ", ".join(repr(k) for k in list(value)[:10])
        return f"Known keys: {keys}." if keys else "The dict is empty."
    return None


def _lookup(e: ast.Name, env: Env) -> Any:
    if e.id == "zip":
        return ZIP
    if e.id not in env.names:
        raise EvalError(e.pos, f"name `{e.id}` is not defined",
                        "Assign it at the top level before its first use (NAME = value).")
    value = env.names[e.id]
    if isinstance(value, Deferred):
        return _eval(value.expr, env)
    return value


def _binop(e: ast.BinOp, a: Any, b: Any) -> Any:
    op = e.op
    for v in (a, b):
        if not isinstance(v, (str, int, float, list, tuple)):
            raise EvalError(e.pos, f"`{op}` does not apply to a {type(v).__name__}")
    if op == "*":
        n = b if isinstance(a, (str, list, tuple)) else a
        seq = a if isinstance(a, (str, list, tuple)) else b
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_SIZE:
            raise EvalError(e.pos, f"the result would have {len(seq) * n} elements")
    if op == "+" and isinstance(a, (str, list, tuple)) and isinstance(b, (str, list, tuple)) \
            and len(a) + len(b) > MAX_SIZE:
        raise EvalError(e.pos, f"the result would have {len(a) + len(b)} elements")
    if op == "%" and isinstance(a, str):
        raise EvalError(e.pos, "`%` string formatting is not supported", "Use + or expand().")
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "//":
            return a // b
        if op == "%":
            return a % b
    except (TypeError, ZeroDivisionError, OverflowError) as err:
        raise EvalError(e.pos, f"`{op}`: {err}") from None
    raise EvalError(e.pos, f"unknown operator {op}")  # pragma: no cover


def _call(e: ast.Call, env: Env) -> Any:
    args = [_eval(a, env) for a in e.args]
    kwargs = {k.name: _eval(k.value, env) for k in e.kwargs}
    if isinstance(e.func, ast.Attribute):
        target = _eval(e.func.value, env)
        if not isinstance(target, _METHOD_TYPES) or e.func.attr not in PURE_METHODS:
            raise EvalError(e.func.pos, f"{type(target).__name__} has no method `{e.func.attr}` here")
        method = getattr(target, e.func.attr, None)
        if method is None:
            raise EvalError(e.func.pos, f"{type(target).__name__} has no method `{e.func.attr}`")
        return _apply(e, method, args, kwargs)
    name = e.func.id
    if name in _FLAGS:
        if len(args) != 1 or kwargs:
            raise EvalError(e.pos, f"{name}() takes one path or list of paths")
        return _apply(e, lambda v: flag(v, name), args, {})
    if name == "glob_wildcards":
        return _apply(e, lambda *a, **k: glob_wildcards(*a, guard=env.guard, seen=env.globbed, **k), args, kwargs)
    return _apply(e, _PLAIN_FUNCTIONS[name], args, kwargs)


_HUGE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\d{5,}[^{}]*\}")  # a width or precision of 10000 or more


def _apply(e: ast.Call, fn: Callable[..., Any], args: list, kwargs: dict) -> Any:
    name = e.func.id if isinstance(e.func, ast.Name) else e.func.attr
    texts = [getattr(fn, "__self__", None), *args] if name in ("format", "expand") else []
    for text in texts:
        for t in text if isinstance(text, list) else [text]:
            if isinstance(t, str) and _HUGE_FORMAT.search(t):
                raise EvalError(e.pos, f"{name}(): a format width or precision in {t[:80]!r} is too large")
    try:
        result = fn(*args, **kwargs)
    except CheckpointPending:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as err:
        raise EvalError(e.pos, f"{name}(): {err}") from None
    if isinstance(result, range):
        try:
            too_long = len(result) > MAX_SIZE
        except OverflowError:
            too_long = True
        if too_long:
            raise EvalError(e.pos, "range() of more than 10,000,000 numbers is too long")
        return list(result)
    return result
