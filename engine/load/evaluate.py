"""Directive values evaluated into what rules hold: paths, params, and the
one check that they name no wildcard the rule's output lacks.

The loader evaluates directives when the Flowfile is read; the job graph
evaluates the ones that wait for a checkpoint once it has run. Both come
here, so a value means the same and fails with the same message whenever it
is evaluated.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flow.grammar import FlowfileError, ast
from flow.rules import Namespace

from .builtins import FlaggedPath
from .env import Env
from .expressions import evaluate
from .functions import Function, Unpack
from .model import PathList, PathSpec
from .patterns import Pattern, PatternError, parse_pattern
from .signals import EvalError

MAX_PATH = 4096  # Linux's PATH_MAX, in bytes


def evaluate_at(expr: ast.Expr, env: Env) -> Any:
    """The value of ``expr``; a ``FlowfileError`` at its position if it has none."""
    try:
        return evaluate(expr, env)
    except EvalError as e:
        raise FlowfileError.at(e.pos, e.message, e.hint) from None


def params_from(args: ast.Arguments, env: Env) -> dict[str, Any]:
    """A params: directive's values; positional ones are named ``_0``, ``_1``..."""
    out: dict[str, Any] = {}
    for i, e in enumerate(args.positional):
        out[f"_{i}"] = evaluate_at(e, env)
    for kw in args.named:
        out[kw.name] = evaluate_at(kw.value, env)
    return out


class PerJob(Exception):
    """The directive holds an input function: its entries are known only for
    a job (the graph evaluates it again for each job of the rule)."""


Caller = Callable[[Function], Any]  # calls an input function for one job


def paths_from(d: ast.Directive, env: Env, label: str, call: Caller | None = None) -> PathList:
    """The entries of input:/output:/log: as patterns with their flags and
    names; input functions are called with ``call`` (``PerJob`` without one)."""
    specs: list[PathSpec] = []
    names: dict[str, int | tuple[int, int]] = {}

    def add(value: Any, e: ast.Expr) -> int:
        if isinstance(value, Function):
            value = _called(value, call)
        if isinstance(value, (list, tuple)):
            n = 0
            for v in value:
                n += add(v, e)
            return n
        specs.append(PathSpec(path_pattern(value, e, d.name, label), _flags(value)))
        return 1

    def add_named(name: str, value: Any, e: ast.Expr) -> None:
        start = len(specs)
        n = add(value, e)
        names[name] = start if (n == 1 and not isinstance(value, (list, tuple))) else (start, start + n)

    for e in d.value.positional:
        value = evaluate_at(e, env)
        if isinstance(value, Unpack):
            value = _unpacked(_called(value.fn, call), e, label)
            if isinstance(value, dict):
                for name, item in value.items():
                    add_named(str(name), item, e)
                continue
        add(value, e)
    for kw in d.value.named:
        add_named(kw.name, evaluate_at(kw.value, env), kw.value)
    return PathList(specs, names)


def job_caller(label: str, wildcards: dict[str, str], what: str = "input", **named: Any) -> Caller:
    """How a job calls its rule's ``what`` functions (input, params, threads,
    resources): with its wildcards (and ``named`` values such as ``input``);
    a failure names the directive, the rule, the wildcards and the line."""
    values = Namespace(wildcards)

    def call(fn: Function) -> Any:
        try:
            return fn.call(values, **named)
        except EvalError as e:
            raise FlowfileError.at(e.pos, f"{what} function {fn.name} of {label}: {e.message}", e.hint) from None

    return call


def called_params(params: dict[str, Any], call: Caller) -> dict[str, Any]:
    """A job's params, each function among them called for the job."""
    return {k: call(v) if isinstance(v, Function) else v for k, v in params.items()}


def _called(fn: Function, call: Caller | None) -> Any:
    if call is None:
        raise PerJob()
    return call(fn)


def _unpacked(value: Any, e: ast.Expr, label: str) -> Any:
    if not isinstance(value, (dict, list, tuple)):
        raise FlowfileError.at(e.pos, f"unpack() in {label}: the function returned a {type(value).__name__}, "
                               "not a dict or a list", "unpack() turns a dict into named inputs.")
    return value


def path_pattern(value: Any, e: ast.Expr, directive: str, label: str) -> Pattern:
    if type(value) is str and _plain(value):  # (most paths: thousands of them from one expand())
        return Pattern(value, (value,))
    if not isinstance(value, str):
        raise FlowfileError.at(e.pos, f"{directive}: entries of {label} must be paths (strings), not {type(value).__name__}")
    if not value:
        raise FlowfileError.at(e.pos, f"an empty path in {directive}: of {label}")
    problem = path_problem(value)
    if problem:
        raise FlowfileError.at(e.pos, f"{directive}: of {label}: {problem}")
    try:
        pattern = parse_pattern(clean_path(str(value)))
        if pattern.names:
            pattern.regex({})  # check inline constraints now
    except PatternError as err:
        raise FlowfileError.at(e.pos, str(err)) from None
    return pattern


def _flags(value: str) -> frozenset[str]:
    return value.flags if isinstance(value, FlaggedPath) else frozenset()


_HINTS = {
    "params": "Params strings are filled with the job's wildcards; write {{ and }} for literal braces.",
    "benchmark": "A benchmark file is named with the output's wildcards; add the wildcard to the output, or drop it.",
}


def check_wildcards(what: str, patterns: Iterable[Pattern], wildcard_names: tuple[str, ...],
                    pos: ast.Pos, label: str) -> None:
    """Every wildcard of an input, log, benchmark or params string is filled
    from the output: one the output lacks is a mistake, reported here alone."""
    for pattern in patterns:
        extra = [n for n in pattern.names if n not in wildcard_names]
        if extra:
            hint = _HINTS.get(what) or (
                "Wildcards in inputs and logs are filled from the output; "
                "use {{" + extra[0] + "}} in expand() to keep it, or add it to the output.")
            raise FlowfileError.at(
                pos, f"{what} {pattern.text!r} of {label} uses wildcard {{{extra[0]}}}, "
                "which its output does not have", hint)


def check_all_wildcards(what: str, patterns: Iterable[Pattern], wildcard_names: tuple[str, ...],
                        pos: ast.Pos, label: str) -> None:
    """A log or benchmark file names every wildcard of the output (as
    Snakemake requires): else two jobs of the rule would write the same file."""
    for pattern in patterns:
        lacking = [n for n in wildcard_names if n not in pattern.names]
        if lacking:
            raise FlowfileError.at(
                pos, f"{what} {pattern.text!r} of {label} lacks wildcard {{{lacking[0]}}} of its output, "
                "so every job of the rule would write the same file",
                f"Add {{{lacking[0]}}} to the {what} path.")


def param_patterns(params: dict[str, Any]) -> Iterator[Pattern]:
    """The params strings that are patterns (formatted with the job's
    wildcards, as in Snakemake); any other string is used as written."""
    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from strings(v)

    for value in params.values():
        for text in strings(value):
            try:
                yield parse_pattern(text)
            except PatternError:
                continue  # not a pattern (e.g. code in braces)


def path_problem(path: str) -> str | None:
    """Why no file could have this name, or None."""
    if "\x00" in path:
        return f"a path cannot contain a NUL byte: {path[:80]!r}"
    try:
        size = len(os.fsencode(path))
    except UnicodeEncodeError:
        return f"a path that no file can have: {path[:80]!r}"
    if size > MAX_PATH:
        return f"a path of more than {MAX_PATH} bytes: {path[:80]!r}..."
    return None


def _plain(path: str) -> bool:
    """A path that is one literal and that any file could have, as it is."""
    return (0 < len(path) <= MAX_PATH and path.isascii() and "{" not in path and "}" not in path
            and "\x00" not in path and not path.startswith("./"))


def clean_path(text: str) -> str:
    """``./a/b`` is ``a/b``: one file, one name."""
    while text.startswith("./"):
        text = text[2:]
    return text
