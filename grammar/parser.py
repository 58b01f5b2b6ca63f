"""The grammar's public entry: Flowfile text or file -> ``ast.Module``, or a ``FlowfileError``.

A parse is three steps, each in its own module and each linear in the text:
1. ``prepass`` cuts ``run:`` blocks (Python, not Flowfile) out of the text,
   keeping line numbers, and refuses what only the raw lines show;
2. Lark's LALR parser (``flowfile.lark``), fed through this parse's own
   ``indenter.FlowIndenter``, hands each reduction to ``builder.AstBuilder``,
   which makes the frozen AST nodes at once (no parse tree is built);
3. ``translate`` turns whatever stopped the parse into a ``FlowfileError``
   with file, line and column, from what this parse hands it.
This module holds the one Lark instance, and the lock under which a parse
uses it and its builder.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from lark import Lark
from lark.lark import PostLex

from . import ast
from .builder import AstBuilder
from .errors import FlowfileError
from .indenter import MAX_BRACKETS, FlowIndenter
from .prepass import prepare
from .translate import PARSE_FAILURES, not_utf8, parse_failure
from .vocabulary import (
    ACTIONS,
    BUILTIN_FUNCTIONS,
    DECLARATIVE_HINT,
    MAX_DEPTH,
    PURE_METHODS,
    PYTHON_KEYWORDS,
    RULE_DIRECTIVES,
    TOPLEVEL_DIRECTIVES,
)

__all__ = [
    "ACTIONS", "BUILTIN_FUNCTIONS", "DECLARATIVE_HINT", "MAX_BRACKETS", "MAX_DEPTH", "PURE_METHODS",
    "PYTHON_KEYWORDS", "RULE_DIRECTIVES", "TOPLEVEL_DIRECTIVES", "parse", "parse_file",
]

GRAMMAR = Path(__file__).with_name("flowfile.lark")


def parse(text: str, file: str = "Flowfile") -> ast.Module:
    """Parse Flowfile text. Raises FlowfileError, never anything else."""
    prepared = prepare(text, file)
    statements = _parse_statements(prepared.text, prepared.for_lark, prepared.runs, file)
    _check_toplevel(statements)
    return ast.Module(file, tuple(statements))


def parse_file(path: str | Path) -> ast.Module:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FlowfileError(f"cannot read {path}: {e.strerror}", str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise not_utf8(e, data, str(path)) from None
    return parse(text, str(path))


class _ToThisParse(PostLex):
    """The postlexer the one Lark instance calls: it hands the token stream
    to the indenter of the parse under way (set, under the lock, by
    ``_parse_statements``)."""

    always_accept = (FlowIndenter.NL_type,)
    indenter: FlowIndenter | None = None

    def process(self, stream):
        return self.indenter.process(stream)


_POSTLEX = _ToThisParse()
_BUILDER = AstBuilder()
_PARSING = threading.Lock()  # the Lark instance, its postlexer and its builder serve one parse at a time


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        postlex=_POSTLEX,
        transformer=_BUILDER,
        maybe_placeholders=True,
        cache=True,
    )


@lru_cache(maxsize=1)
def _lark_field() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        start="fexpr",
        transformer=_BUILDER,
        maybe_placeholders=True,
        cache=True,
    )


def field_parser():
    """The parse of one f-string field's expression (text on one line) to an
    AST node, by the builder of the parse under way: the builder calls it
    while it makes an f-string, under ``_PARSING``."""
    return _lark_field().parse


def _parse_statements(text: str, for_lark: str, runs: list[ast.RunBlock], file: str) -> list:
    """Lark's parse of ``for_lark`` (``text`` without its run blocks), straight to AST statements."""
    indenter = FlowIndenter()  # this parse's: what the error path asks of it is passed on
    with _PARSING, _cyclic_gc_paused():
        _POSTLEX.indenter = indenter
        _BUILDER.begin(file, runs)
        try:
            return _lark().parse(for_lark)
        except PARSE_FAILURES as e:
            raise parse_failure(e, file, text, for_lark, indenter.unclosed(), indenter.continuing()) from None
        finally:
            _POSTLEX.indenter = None


def _check_toplevel(statements: list) -> None:
    """What a statement outside rules may be: a directive of the top level."""
    for stmt in statements:
        if isinstance(stmt, ast.Directive) and stmt.name not in TOPLEVEL_DIRECTIVES:
            if stmt.name in RULE_DIRECTIVES:
                raise FlowfileError.at(stmt.pos, f"`{stmt.name}:` belongs inside a rule",
                                       "Indent it under a `rule NAME:` line.")
            raise FlowfileError.at(
                stmt.pos, f"unknown top-level directive `{stmt.name}:`",
                "Top-level directives: " + ", ".join(sorted(TOPLEVEL_DIRECTIVES | {"ruleorder"})) + ".",
            )


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """A parse makes an object or more per token, and no reference cycles:
    the cyclic garbage collector would only walk them again and again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
