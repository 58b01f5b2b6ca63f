"""Failures of a parse -> ``FlowfileError``, with file, line, column and a helpful message.

It receives what stopped a parse, and everything it needs to say where and
why as arguments: the exception (Lark's ``UnexpectedInput``, the indenter's
``Positioned``, the builder's ``AstError``, a literal Python refused, or a
file that is not UTF-8), the text the parse saw, and for Lark's errors the
bracket the parse's own indenter still had open. It reads no parser state of
its own, and hands on the ``FlowfileError`` to raise. Positions of the cut-out
text are those of the file (the pre-pass keeps line numbers).
"""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .builder import AstError
from .errors import FlowfileError
from .indenter import Positioned
from .vocabulary import (
    DECLARATIVE_HINT,
    KEYWORD_MESSAGES,
    PLACED_KEYWORDS,
    PYTHON_KEYWORDS,
    STATEMENT_KEYWORDS,
)

__all__ = ["PARSE_FAILURES", "from_lark", "not_utf8", "parse_failure"]

# What a parse may raise besides FlowfileError (a literal Python rejects in a way not foreseen
# is a SyntaxError or a ValueError).
PARSE_FAILURES = (Positioned, AstError, UnexpectedInput, SyntaxError, ValueError)


def parse_failure(e: Exception, file: str, text: str, for_lark: str, unclosed: Token | None,
                  continuing: tuple[int, bool] | None = None) -> FlowfileError:
    """The FlowfileError for one of ``PARSE_FAILURES``. ``text`` is the whole
    (normalised) text, ``for_lark`` the text Lark parsed, ``unclosed`` the
    innermost bracket this parse's indenter had open when it stopped, and
    ``continuing`` where its last line went on with a directive's value
    (``FlowIndenter.continuing``)."""
    if isinstance(e, Positioned):
        return FlowfileError(e.message, file, e.line, e.column, e.hint, _line_of(for_lark, e.line))
    if isinstance(e, AstError):
        return FlowfileError(e.message, file, e.pos.line, e.pos.column, e.hint, _line_of(text, e.pos.line))
    if isinstance(e, UnexpectedInput):
        return _directive_in_a_value(e, for_lark, file, continuing) or from_lark(e, for_lark, file, unclosed)
    return FlowfileError(f"invalid literal: {e}", file, None, None)


_DIRECTIVE_START = re.compile(r"[ \t]*([^\W\d]\w*)[ \t]*:")


def _directive_in_a_value(e: UnexpectedInput, text: str, file: str,
                          continuing: tuple[int, bool] | None) -> FlowfileError | None:
    """A ``NAME:`` line read as going on with the value of the directive
    above it (it is indented deeper): say so, rather than what Lark expected."""
    if continuing is None or e.line != continuing[0]:
        return None
    source = _line_of(text, e.line) or ""
    m = _DIRECTIVE_START.match(source)
    if m is None or (e.column or 0) > m.end():
        return None
    name, column = m.group(1), m.start(1) + 1
    if continuing[1]:
        return FlowfileError(
            f"`{name}:` is indented under a rule whose directive is on its `rule` line", file, e.line,
            column, "A rule written on one line (`rule NAME: DIRECTIVE: VALUE`) has that one directive, "
            "as in Snakemake. For more, put each directive on its own indented line under `rule NAME:`.",
            source)
    return FlowfileError(f"`{name}:` is indented deeper than the directive above it, so it reads as "
                         "part of that directive's value", file, e.line, column,
                         "Indent each directive of a rule as deep as the others.", source)


_READABLE = {
    "NAME": "a name", "STRING": "a string", "LONG_STRING": "a string", "NUMBER": "a number",
    "COLON": "':'", "COMMA": "','", "EQUAL": "'='", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'", "_NL": "end of line",
    "_INDENT": "an indented block", "_DEDENT": "end of block", "$END": "end of file",
    "RULE": "`rule`", "CHECKPOINT": "`checkpoint`", "MORETHAN": "'>'", "DOT": "'.'",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "RUNREF": "a run block",
    "LESSTHAN": "'<'", "PERCENT": "'%'",
    **{k: f"`{k.lower()}`" for k in ("DEF", "RETURN", "PASS", "IF", "ELIF", "ELSE", "FOR", "IN", "IS",
                                      "NOT", "AND", "OR", "LAMBDA")},
}


def _describe_token(tok: Token) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "_INDENT":
        return "indentation"
    if tok.type == "_DEDENT":
        return "end of block"
    if tok.type == "$END":
        return "end of file"
    return f"`{tok.value}`"


def _blank_strings(line: str) -> str:
    return re.sub(r"(\"[^\"]*\"|'[^']*')", lambda m: " " * len(m.group(0)), line)


def _misplaced_keyword(e: UnexpectedInput, source: str, column: int) -> tuple[str, int] | None:
    """The Python keyword that stopped the parse, with its column: the
    unexpected token itself (read as a name, where that keyword has no place),
    or the keyword that starts the line: one of a statement a Flowfile never
    has, or, right before the unexpected token, one of a statement that has no
    place here (the parse read it as a name)."""
    token = getattr(e, "token", None)
    if token is not None and token.type == "NAME" and token.value in PYTHON_KEYWORDS:
        return token.value, column
    code = _blank_strings(source)
    m = re.match(r"[ \t]*([^\W\d]\w*)", code)
    if m is None:
        return None
    word, kcol = m.group(1), m.start(1) + 1
    if word in STATEMENT_KEYWORDS and column >= kcol:
        return word, kcol
    if word in PLACED_KEYWORDS and token is not None and not code[m.end():max(column - 1, m.end())].strip():
        # right after the keyword: it was read as a name (a directive's or an assignment's)
        expected = set(getattr(e, "expected", ()) or ())
        if expected & {"COLON", "EQUAL", "COMMA"} or not expected:
            return word, kcol
    return None


def _after_block_header(lines: list[str], line: int) -> bool:
    """Whether the line before ``line`` (1-based) opens a block (``rule a:``)."""
    for prev in reversed(lines[: max(line - 1, 0)]):
        code = _blank_strings(prev).split("#", 1)[0].strip()
        if code:
            return code.endswith(":") and code.split()[0] in ("rule", "checkpoint")
    return False


def from_lark(e: UnexpectedInput, text: str, file: str, unclosed: Token | None = None) -> FlowfileError:
    """Lark's error on ``text``, said in the Flowfile's terms. ``unclosed`` is
    the innermost bracket open where the parse stopped (its indenter's
    ``unclosed()``): a mistake on a later line is most likely that bracket."""
    lines = text.split("\n")
    line, column = e.line, e.column
    if isinstance(e, UnexpectedToken) and e.token.type == "_INDENT":
        line, column = e.token.end_line or line, e.token.end_column or column
    elif isinstance(e, UnexpectedToken) and e.token.type in ("_NL", "_DEDENT", "$END"):
        # point at the end of the previous line rather than at the next one
        tok = e.token
        line = tok.line if tok.line is not None else len(lines)
        if tok.type == "$END" or line > len(lines):
            line = len([ln for ln in lines if True]) or 1
            while line > 1 and not lines[line - 1].strip():
                line -= 1
        column = len(lines[line - 1].rstrip()) + 1 if 0 < line <= len(lines) else 1
    source = lines[line - 1] if 0 < (line or 0) <= len(lines) else ""
    found = _misplaced_keyword(e, source, column or 1)
    if found is not None:
        keyword, kcol = found
        what, hint = KEYWORD_MESSAGES.get(keyword, (f"`{keyword}` is not allowed here", DECLARATIVE_HINT))
        return FlowfileError(what, file, line, kcol, hint, source)
    if isinstance(e, UnexpectedCharacters):
        rest = source[(column or 1) - 1:]
        if rest[:3] in ('"""', "'''"):
            return FlowfileError(f"the string {rest[:3]} is never closed", file, line, column,
                                 f"End it with {rest[:3]}.", source)
        if e.char in "\"'":
            return FlowfileError(f"the string {e.char} is never closed on this line", file, line, column,
                                 f"End it with {e.char} on the same line, or use triple quotes "
                                 "for text over several lines.", source)
        return FlowfileError(f"unexpected character {e.char!r}", file, line, column, None, source)
    if isinstance(e, UnexpectedToken):
        expected = sorted({_READABLE.get(t, f"'{t}'" if not t.isupper() else t.lower())
                           for t in e.expected if not t.startswith("__")})
        msg = f"unexpected {_describe_token(e.token)}"
        hint = None
        if unclosed is not None and unclosed.line < line:
            b = unclosed
            return FlowfileError(msg, file, line, column,
                                 f"The '{b.value}' at line {b.line}, column {b.column} is never closed.", source)
        if e.token.type == "_INDENT":
            msg = "unexpected indentation"
        elif "_INDENT" in e.expected or _after_block_header(lines, line):
            hint = "Expected an indented block: indent the lines under it."
        elif expected and len(expected) <= 6:
            hint = "Expected " + " or ".join(expected) + "."
        return FlowfileError(msg, file, line, column, hint, source)
    if isinstance(e, UnexpectedEOF):
        return FlowfileError("unexpected end of file", file, len(lines), 1, None, lines[-1] if lines else "")
    return FlowfileError(str(e), file, line, column, None, source)


def _line_of(text: str, line: int) -> str | None:
    """Line ``line`` (1-based) of ``text``, without splitting all of it."""
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    if line < 1:
        return None
    end = text.find("\n", start)
    return text[start:end if end >= 0 else len(text)]


def not_utf8(e: UnicodeDecodeError, data: bytes, file: str) -> FlowfileError:
    """Point at the first byte that is not UTF-8, by line and character column."""
    start = data.rfind(b"\n", 0, e.start) + 1
    end = data.find(b"\n", e.start)
    line = data[start:end if end >= 0 else len(data)]
    column = len(data[start:e.start].decode("utf-8", "replace")) + 1
    return FlowfileError(f"the file is not UTF-8 text (byte 0x{data[e.start]:02x}: {e.reason})",
                         file, data.count(b"\n", 0, e.start) + 1, column,
                         "Save it as UTF-8.", line.decode("utf-8", "replace"))
