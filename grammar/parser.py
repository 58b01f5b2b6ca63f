"""Flowfile text -> AST (flow.grammar.ast).

Two steps, each small:
1. ``_extract_run_blocks`` cuts ``run:`` blocks out of the text (they are Python,
   not Flowfile) and leaves a placeholder, keeping line numbers intact;
2. Lark's LALR parser, fed by ``FlowIndenter``, hands each reduction to
   ``builder.AstBuilder``, which makes the frozen dataclasses at once (no parse
   tree is built) and checks what a rule's parts alone can tell.
Every failure becomes a ``FlowfileError`` with file, line and column. Each
step is linear in the text: no regular expression here or in the grammar
keeps state per character it matches (their repeats are possessive).
"""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.indenter import Indenter

from . import ast
from .builder import (
    ACTIONS,
    BUILTIN_FUNCTIONS,
    DECLARATIVE_HINT,
    DEPTH_HINT,
    MAX_DEPTH,
    PURE_METHODS,
    PYTHON_KEYWORDS,
    RULE_DIRECTIVES,
    TOPLEVEL_DIRECTIVES,
    AstBuilder,
    AstError,
)
from .errors import FlowfileError

__all__ = [
    "ACTIONS", "BUILTIN_FUNCTIONS", "DECLARATIVE_HINT", "MAX_DEPTH", "PURE_METHODS",
    "PYTHON_KEYWORDS", "RULE_DIRECTIVES", "TOPLEVEL_DIRECTIVES", "parse", "parse_file",
]

_GRAMMAR = Path(__file__).with_name("flowfile.lark")
# Brackets open at once. Grouping parentheses are no expression level, so they
# have a looser bound than MAX_DEPTH, there only to keep the parser's stack small.
MAX_BRACKETS = 1000


class FlowIndenter(Indenter):
    """Lark's Indenter, plus Snakemake's rule that a directive's value continues
    on every following line indented deeper than the directive itself.

    ``input:`` followed by an indented list is thus the same token stream as
    the one-line form, which keeps the grammar LALR(1)."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def __init__(self) -> None:
        super().__init__()
        self.open_brackets: list[Token] = []
        self.nested_lists = self.minus_run = 0

    def process(self, stream):
        self.open_brackets = []
        self.nested_lists = 0  # the '[' and '{' among the open brackets
        self.minus_run = 0  # '-' tokens in a row
        return super().process(stream)

    def _process(self, stream):
        line_start: list[str] = []  # the first two token types of the logical line
        continuing_from: int | None = None  # indent of the directive whose value continues
        last = None
        for token in stream:
            last = token
            if token.type == self.NL_type:
                if self.paren_level > 0:
                    continue
                indent = _indent_of(token)
                if continuing_from is None and line_start == ["NAME", "COLON"]:
                    continuing_from = self.indent_level[-1]
                if continuing_from is not None and indent > continuing_from:
                    continue  # the directive's value goes on
                continuing_from = None
                line_start = []
                yield from self._handle_nl(token, indent)
                continue
            if len(line_start) < 2:
                line_start.append(token.type)
            yield token
            self._track(token)
        if self.paren_level > 0:
            tok = self.open_brackets[-1]
            raise _Positioned(f"'{tok.value}' is never closed", tok.line, tok.column)
        while len(self.indent_level) > 1:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, "", last) if last else Token(self.DEDENT_type, "")

    def _track(self, token: Token) -> None:
        """Count what nests as it opens: brackets, and runs of '-' (all but the
        first of a run are unary). What is sure to nest too deeply is refused
        at once, so that the parser's stack stays bounded whatever the text."""
        self.minus_run = self.minus_run + 1 if token.type == "MINUS" else 0
        if self.minus_run > MAX_DEPTH + 1:
            raise _too_deep(token)
        if token.type in self.OPEN_PAREN_types:
            self._open(token)
        elif token.type in self.CLOSE_PAREN_types:
            self._close(token)

    def _open(self, token: Token) -> None:
        self.paren_level += 1
        self.open_brackets.append(token)
        if token.type != "LPAR":
            self.nested_lists += 1  # each '[' or '{' is an expression level
        if self.nested_lists > MAX_DEPTH or self.paren_level > MAX_BRACKETS:
            raise _too_deep(token)

    def _close(self, token: Token) -> None:
        self.paren_level -= 1
        if self.paren_level < 0 or not self.open_brackets:
            raise _Positioned(f"unmatched '{token.value}'", token.line, token.column)
        self.nested_lists -= self.open_brackets.pop().type != "LPAR"

    def _handle_nl(self, token: Token, indent: int):
        yield token
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, "", token)
            return
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, "", token)
        if indent != self.indent_level[-1]:
            line = token.end_line if token.end_line is not None else token.line
            raise _Positioned(
                "this line's indentation matches no enclosing block", line, indent + 1
            )


def _too_deep(token: Token) -> _Positioned:
    return _Positioned("expression nested too deeply", token.line, token.column, DEPTH_HINT)


def _indent_of(nl_token: Token) -> int:
    return len(nl_token.rsplit("\n", 1)[-1]) if "\n" in nl_token else 0


class _Positioned(Exception):
    def __init__(self, message: str, line: int, column: int, hint: str | None = None):
        super().__init__(message)
        self.message, self.line, self.column, self.hint = message, line, column, hint


_INDENTER = FlowIndenter()
_BUILDER = AstBuilder()
_PARSING = threading.Lock()  # the indenter and the builder hold one parse's state


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        _GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        postlex=_INDENTER,
        transformer=_BUILDER,
        maybe_placeholders=True,
        cache=True,
    )


# ------------------------------------------------------------------ run blocks

_RULE_HEADER = re.compile(r"^(rule|checkpoint)\b")
_RUN_LINE = re.compile(r"^( +)run\s*:(.*)$")


# A line that may start a run block, or a tab in the indentation of a line with code.
_MAY_CUT_OR_REFUSE = re.compile(r"^(?: +run\s*:|[ \t]*\t[ \t]*[^ \t\n])", re.MULTILINE)


def _extract_run_blocks(text: str, file: str) -> tuple[str, list[ast.RunBlock]]:
    """Replace each ``run:`` block by ``run: @runN`` and blank lines."""
    if not _MAY_CUT_OR_REFUSE.search(text):
        return text, []  # nothing for the line by line walk below to cut or refuse
    lines = text.split("\n")
    blocks: list[ast.RunBlock] = []
    in_rule = False
    in_long_string: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if in_long_string is None:
            _check_tabs(line, i + 1, file)
            if _RULE_HEADER.match(line):
                in_rule = True
            elif line.strip() and not line[0].isspace() and not line.lstrip().startswith("#"):
                in_rule = False
            m = _RUN_LINE.match(line)
            if in_rule and m:
                indent = len(m.group(1))
                rest = m.group(2)
                if rest.strip() and not rest.strip().startswith("#"):
                    code, first = rest.strip(), i + 1
                    lines[i] = f"{m.group(1)}run: @run{len(blocks)}"
                    col = len(line) - len(rest.lstrip()) + 1
                    blocks.append(ast.RunBlock(code, ast.Pos(file, first, col)))
                    i += 1
                    continue
                j = i + 1
                body: list[str] = []
                in_string: str | None = None  # a triple-quoted string may reach column 0
                while j < len(lines):
                    nxt = lines[j]
                    if in_string is None and nxt.strip() and len(nxt) - len(nxt.lstrip(" \t")) <= indent:
                        break
                    body.append(nxt)
                    in_string = _long_string_state(nxt, in_string)
                    j += 1
                while body and not body[-1].strip():
                    body.pop()
                if not body:
                    if j < len(lines):
                        _check_tabs(lines[j], j + 1, file)
                    raise FlowfileError(
                        "`run:` has no code: indent the Python block below it",
                        file, i + 1, indent + 1, source_line=line,
                    )
                code = _dedent_code(body)
                first_col = len(body[0]) - len(body[0].lstrip()) + 1
                blocks.append(ast.RunBlock(code, ast.Pos(file, i + 2, first_col)))
                lines[i] = f"{m.group(1)}run: @run{len(blocks) - 1}"
                for k in range(i + 1, i + 1 + len(body)):
                    lines[k] = ""
                i += 1 + len(body)
                continue
        in_long_string = _long_string_state(line, in_long_string)
        i += 1
    return "\n".join(lines), blocks


def _dedent_code(body: list[str]) -> str:
    """Remove the block's indentation from its code lines, but not from the
    lines of a triple-quoted string (their text is the string's content)."""
    first = next(ln for ln in body if ln.strip())
    width = len(first) - len(first.lstrip())
    out, state = [], None
    for ln in body:
        if state is None:
            lead = len(ln) - len(ln.lstrip(" "))
            out.append(ln[min(lead, width):])
        else:
            out.append(ln)
        state = _long_string_state(ln, state)
    return "\n".join(out)


def _check_tabs(line: str, lineno: int, file: str) -> None:
    stripped = line.lstrip(" \t")
    if stripped and "\t" in line[: len(line) - len(stripped)]:
        col = line.index("\t") + 1
        raise FlowfileError(
            "a tab in indentation", file, lineno, col,
            hint="Indent Flowfiles with spaces only (as Snakemake and Python style do).",
            source_line=line,
        )


def _long_string_state(line: str, state: str | None) -> str | None:
    """Whether a line ends inside a triple-quoted string: ``state`` is the
    open quote (or None) before the line, the result the one after it.
    Quotes inside comments and one-line strings do not count."""
    i = 0
    while True:
        if state is not None:  # inside a long string: find its end
            end = _LONG_REST[state].match(line, i)
            if end is None:
                return state
            i, state = end.end(), None
            continue
        found = _QUOTE_OR_COMMENT.search(line, i)
        if found is None or found.group() == "#":
            return None
        if len(found.group()) == 3:
            i, state = found.end(), found.group()
        else:  # a one-line string: skip to its end, or to the end of the line
            i = _ONE_LINE_REST[found.group()].match(line, found.end()).end()


# Possessive repeats: each match takes time linear in the line, and no memory per character.
_QUOTE_OR_COMMENT = re.compile("#|\"\"\"|'''|[\"']")
_ONE_LINE_REST = {q: re.compile(rf"(?:[^{q}\\]|\\[\s\S])*+{q}?") for q in "'\""}
_LONG_REST = {q * 3: re.compile(rf"(?:[^{q}\\]|\\[\s\S]|{q}(?!{q}{q}))*+{q * 3}") for q in "'\""}


# -------------------------------------------------------------------- errors

_READABLE = {
    "NAME": "a name", "STRING": "a string", "LONG_STRING": "a string", "NUMBER": "a number",
    "COLON": "':'", "COMMA": "','", "EQUAL": "'='", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'", "_NL": "end of line",
    "_INDENT": "an indented block", "_DEDENT": "end of block", "$END": "end of file",
    "RULE": "`rule`", "CHECKPOINT": "`checkpoint`", "MORETHAN": "'>'", "DOT": "'.'",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "RUNREF": "a run block",
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


def _keyword_on_line(source_line: str, column: int) -> tuple[str, int] | None:
    """The first Python keyword on the line up to ``column``, outside strings,
    with its column."""
    code = _blank_strings(source_line)
    for m in re.finditer(r"[^\W\d]\w*", code[: max(column, 1) + 20]):
        if m.group(0) in PYTHON_KEYWORDS and m.start() < max(column, 1):
            return m.group(0), m.start() + 1
    return None


def _after_block_header(lines: list[str], line: int) -> bool:
    """Whether the line before ``line`` (1-based) opens a block (``rule a:``)."""
    for prev in reversed(lines[: max(line - 1, 0)]):
        code = _blank_strings(prev).split("#", 1)[0].strip()
        if code:
            return code.endswith(":") and code.split()[0] in ("rule", "checkpoint")
    return False


def _from_lark(e: UnexpectedInput, text: str, file: str) -> FlowfileError:
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
    found = None
    if isinstance(e, UnexpectedToken) and e.token.type == "NAME" and e.token.value in PYTHON_KEYWORDS:
        found = (e.token.value, column)
    elif source:
        found = _keyword_on_line(source, column or 1)
    if found is not None:
        keyword, kcol = found
        what = {
            "import": "`import` statements are",
            "from": "`from ... import` statements are",
            "def": "function definitions (`def`) are",
            "class": "class definitions are",
            "lambda": "`lambda` functions are",
            "for": "loops and comprehensions (`for`) are",
            "if": "`if` statements and expressions are",
            "while": "`while` loops are",
        }.get(keyword, f"`{keyword}` is")
        return FlowfileError(
            f"{what} not allowed in a Flowfile", file, line,
            kcol, DECLARATIVE_HINT, source,
        )
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
        if _INDENTER.open_brackets and _INDENTER.open_brackets[-1].line < line:
            b = _INDENTER.open_brackets[-1]
            return FlowfileError(msg, file, line, column,
                                 f"The '{b.value}' at line {b.line}, column {b.column} is never closed.", source)
        if e.token.type == "_INDENT":
            msg = "unexpected indentation"
        elif "_INDENT" in e.expected or _after_block_header(lines, line):
            hint = "Expected an indented block: indent the lines under it with spaces."
        elif expected and len(expected) <= 6:
            hint = "Expected " + " or ".join(expected) + "."
        return FlowfileError(msg, file, line, column, hint, source)
    if isinstance(e, UnexpectedEOF):
        return FlowfileError("unexpected end of file", file, len(lines), 1, None, lines[-1] if lines else "")
    return FlowfileError(str(e), file, line, column, None, source)


_HANDLER = re.compile(r"(onstart|onsuccess|onerror)\s*:")
_ANY_HANDLER = re.compile(r"^(?:onstart|onsuccess|onerror)\s*:", re.MULTILINE)


def _check_handlers(text: str, file: str) -> None:
    """Snakemake's ``onsuccess:``-style handlers hold Python: name them
    rather than fail on their code."""
    if not _ANY_HANDLER.search(text):
        return  # the line by line walk below only tells real handlers from text in strings
    in_string: str | None = None
    for i, line in enumerate(text.split("\n")):
        m = _HANDLER.match(line) if in_string is None else None
        if m:
            raise FlowfileError(f"`{m.group(1)}:` handlers are not supported in Flowfiles", file, i + 1, 1,
                                "A Flowfile is declarative: make the step a rule, or run it after "
                                "`flow run` (its exit code says whether the run succeeded).", line)
        in_string = _long_string_state(line, in_string)


def parse(text: str, file: str = "Flowfile") -> ast.Module:
    """Parse Flowfile text. Raises FlowfileError, never anything else."""
    _check_handlers(text, file)
    if "\x00" in text:
        idx = text.index("\x00")
        ln = text.count("\n", 0, idx) + 1
        col = idx - (text.rfind("\n", 0, idx) + 1) + 1
        raise FlowfileError("the file contains a NUL byte; is it a binary file?", file, ln, col)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    stripped, runs = _extract_run_blocks(text, file)
    statements = _parse_statements(text, stripped, runs, file)
    for stmt in statements:
        if isinstance(stmt, ast.Directive) and stmt.name not in TOPLEVEL_DIRECTIVES:
            if stmt.name in RULE_DIRECTIVES:
                raise FlowfileError.at(stmt.pos, f"`{stmt.name}:` belongs inside a rule",
                                       "Indent it under a `rule NAME:` line.")
            raise FlowfileError.at(
                stmt.pos, f"unknown top-level directive `{stmt.name}:`",
                "Top-level directives: " + ", ".join(sorted(TOPLEVEL_DIRECTIVES | {"ruleorder"})) + ".",
            )
    return ast.Module(file, tuple(statements))


def _parse_statements(text: str, stripped: str, runs: list[ast.RunBlock], file: str) -> list:
    """Lark's parse of ``stripped`` (``text`` without its run blocks), straight to AST statements."""
    with _PARSING, _cyclic_gc_paused():
        _BUILDER.begin(file, runs)
        try:
            return _lark().parse(stripped)
        except _Positioned as e:
            raise FlowfileError(e.message, file, e.line, e.column, e.hint, _line_of(stripped, e.line)) from None
        except AstError as e:
            raise FlowfileError(e.message, file, e.pos.line, e.pos.column, e.hint,
                                _line_of(text, e.pos.line)) from None
        except UnexpectedInput as e:
            raise _from_lark(e, stripped, file) from None
        except (SyntaxError, ValueError) as e:  # a literal Python rejects in a way not foreseen
            raise FlowfileError(f"invalid literal: {e}", file, None, None) from None


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


def parse_file(path: str | Path) -> ast.Module:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FlowfileError(f"cannot read {path}: {e.strerror}", str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(e, data, str(path)) from None
    return parse(text, str(path))


def _not_utf8(e: UnicodeDecodeError, data: bytes, file: str) -> FlowfileError:
    """Point at the first byte that is not UTF-8, by line and character column."""
    start = data.rfind(b"\n", 0, e.start) + 1
    end = data.find(b"\n", e.start)
    line = data[start:end if end >= 0 else len(data)]
    column = len(data[start:e.start].decode("utf-8", "replace")) + 1
    return FlowfileError(f"the file is not UTF-8 text (byte 0x{data[e.start]:02x}: {e.reason})",
                         file, data.count(b"\n", 0, e.start) + 1, column,
                         "Save it as UTF-8.", line.decode("utf-8", "replace"))
