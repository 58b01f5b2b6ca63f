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

What an evaluation may cost is bounded: no list or string longer than
``MAX_SIZE``, no integer wider than ``MAX_INT_BITS``, at most ``MAX_STEPS``
steps (a comprehension iteration is one, a function call ``CALL_STEPS``),
functions nested ``MAX_CALLS`` deep at most: a few seconds of work at most.

Objects of the engine may take part: one with a ``flow_attribute(name)``
method answers ``obj.name``, one with ``flow_method(name)`` (returning a
callable, or None) answers ``obj.name(...)``.
"""

from __future__ import annotations

import itertools
import operator
import os
import posixpath
import re
import threading
from collections import ChainMap, namedtuple
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flow.grammar import BUILTIN_FUNCTIONS, DECLARATIVE_HINT, PURE_METHODS, ast
from flow.rules import NamedList

from .patterns import PatternError, parse_pattern

MAX_SIZE = 10_000_000  # longest list or string an expression may build
MAX_INT_BITS = 1 << 16  # widest integer an expression may make (about 20,000 digits)
MAX_STEPS = 2_000_000  # comprehension iterations (1 each) and function calls (CALL_STEPS each)
CALL_STEPS = 10  # a call costs about ten times an iteration
MAX_CALLS = 50  # functions calling functions (recursion) at most this deep


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
    """``zip`` as the second argument of ``expand``; called, Python's ``zip``."""

    def __call__(self, *iterables: Any) -> list[tuple]:
        return list(zip(*iterables, strict=False))

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
        flags = sorted(f for f in getattr(pattern, "flags", ()) if not f.startswith("rule:"))
        if flags:  # as Snakemake refuses them: each path made would silently lose them
            raise ValueError(f"{', '.join(flags)}() around the pattern {str(pattern)!r} inside expand() is not "
                             f"allowed: apply it outside, as {flags[0]}(expand(...))")
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
    """expand()'s values of one wildcard: any collection (a list, a dict's
    keys, a set...) gives its items; a string or number is one value."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


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

    def child(self, local: dict[str, Any]) -> Env:
        """An Env whose names are ``local``, then these (a function's or a
        comprehension's scope): assignments go to ``local``."""
        return Env(ChainMap(local, self.names), self.guard, self.globbed)


# ------------------------------------------------------------------ functions


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


class PureNamespace:
    """A module as a Flowfile expression sees it: ``os`` with only ``os.path``'s
    pure helpers (they read no file), and ``os.sep``."""

    def __init__(self, name: str, members: dict[str, Any]):
        self._name, self._members = name, members

    def flow_attribute(self, name: str) -> Any:
        if name not in self._members:
            raise AttributeError(f"`{self._name}.{name}` is not available in a Flowfile expression")
        return self._members[name]

    def flow_method(self, name: str) -> Callable[..., Any] | None:
        member = self._members.get(name)
        return member if callable(member) else None

    def __repr__(self) -> str:
        return f"<{self._name}>"


PURE_OS = PureNamespace("os", {
    "path": PureNamespace("os.path", {
        "join": posixpath.join, "basename": posixpath.basename, "dirname": posixpath.dirname,
        "splitext": posixpath.splitext, "normpath": posixpath.normpath, "split": posixpath.split,
        "sep": "/",
    }),
    "sep": "/",
})


# --------------------------------------------------------------- the budget


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


# --------------------------------------------------------------- evaluation


_FLAGS = ("temp", "protected", "directory", "ancient", "touch")
_METHOD_TYPES = (str, dict, list, tuple, set, frozenset)


def _flag_function(name: str) -> Callable[..., Any]:
    def apply(*args: Any, **kwargs: Any) -> Any:
        if len(args) != 1 or kwargs:
            raise TypeError(f"{name}() takes one path or list of paths")
        return flag(args[0], name)

    apply.__name__ = name
    return apply


def _unpack(fn: Any) -> Unpack:
    if not isinstance(fn, Function):
        raise TypeError(f"unpack() takes an input function (a lambda or a def), not {type(fn).__name__}")
    return Unpack(fn)


_PLAIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "range": range, "len": len, "str": str, "int": int, "float": float, "bool": bool,
    "sorted": sorted, "list": list, "min": min, "max": max, "abs": abs, "multiext": multiext,
    "expand": expand, "tuple": tuple, "dict": dict, "set": set, "sum": sum, "any": any, "all": all,
    "enumerate": enumerate, "zip": ZIP, "reversed": reversed, "round": round, "map": map,
    "filter": filter, "repr": repr, "chr": chr, "ord": ord, "unpack": _unpack,
    **{name: _flag_function(name) for name in _FLAGS},
}
_CALLABLE_IDS = frozenset(id(f) for f in _PLAIN_FUNCTIONS.values())
_ITERATORS = (map, filter, zip, enumerate, reversed, type(iter(())), type(iter([])), type(iter("")))


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
    value = _eval(e.value, env)
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


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge, "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
    "is": operator.is_, "is not": operator.is_not,
}


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


def _a(value: Any) -> str:
    """``a list``, ``an int``: the type of ``value`` with its article."""
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


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


class _Globber:
    """``glob_wildcards`` of one Env (its guard and record of what it walked)."""

    __slots__ = ("env",)
    __name__ = "glob_wildcards"

    def __init__(self, env: Env):
        self.env = env

    def __call__(self, *a: Any, **k: Any) -> Any:
        return glob_wildcards(*a, guard=self.env.guard, seen=self.env.globbed, **k)

    def __repr__(self) -> str:
        return "glob_wildcards"


_CHARGED = (str, list, tuple, dict, set, frozenset)


def _charge(value: Any, pos: ast.Pos) -> None:
    """A large value made by an operator or a function costs steps by its
    size (one a ten elements), so that no evaluation makes many of them."""
    if isinstance(value, _CHARGED) and len(value) > 1000:
        _step(pos, len(value) // 10)


def _check_size(n: int, pos: ast.Pos) -> None:
    if n > MAX_SIZE:
        raise EvalError(pos, f"the result would have more than {MAX_SIZE:,} elements")


def _binop(e: ast.BinOp, env: Env) -> Any:
    a, b = _eval(e.left, env), _eval(e.right, env)
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


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod,
}


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
    fn = _eval(func, env)
    if isinstance(fn, Function):
        if _STATE.calls >= MAX_CALLS:
            raise EvalError(e.pos, f"functions call each other more than {MAX_CALLS} deep here",
                            "A Flowfile function that calls itself must stop before that.")
        try:
            return fn(*args, **kwargs)
        except TypeError as err:  # the arguments do not fit its parameters
            raise EvalError(e.pos, str(err)) from None
    if id(fn) in _CALLABLE_IDS or isinstance(fn, _Globber):
        return _apply(e, fn, args, kwargs)
    if isinstance(fn, Unpack):
        raise EvalError(func.pos, "an unpack() value is not a function")
    raise EvalError(func.pos, f"{_a(fn)} is not a function")


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
    if isinstance(result, _ITERATORS):
        out = []
        for item in result:
            out.append(item)
            _check_size(len(out), e.pos)
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
