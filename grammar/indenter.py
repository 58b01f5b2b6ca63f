"""The postlexer between Lark's lexer and its parser: tokens in, tokens with
blocks out.

It receives the token stream of the text Lark parses (``run:`` blocks
already cut out by ``prepass``) and hands on the same tokens with
``_INDENT``/``_DEDENT`` added where a line opens or closes a block, as
Python reads indentation: a tab advances to the next multiple of 8 columns,
and a line whose depth would depend on that (tabs and spaces mixed so that
its block differs with a tab read as 1 column) is refused as Python refuses
it, naming the line. Line breaks inside brackets, and inside a
directive's value written over several lines, are dropped, so both forms of a
value are one token stream. It bounds how deeply brackets and unary minus
nest, so that the parser's stack stays small whatever the text.

Its mistakes are ``Positioned`` exceptions carrying their own line and
column. One ``FlowIndenter`` serves one parse: after a parse error, its
``unclosed()`` is the bracket still open where the parse stopped.
"""

from __future__ import annotations

from lark import Token
from lark.indenter import Indenter

from .prepass import MIXED_INDENT_HINT, indent_width
from .vocabulary import DEPTH_HINT, MAX_DEPTH

__all__ = ["MAX_BRACKETS", "FlowIndenter", "Positioned"]

# Brackets open at once. Grouping parentheses are no expression level, so they
# have a looser bound than MAX_DEPTH, there only to keep the parser's stack small.
MAX_BRACKETS = 1000


class Positioned(Exception):
    """A mistake the indenter finds, at a line and column of the text Lark parses."""

    def __init__(self, message: str, line: int, column: int, hint: str | None = None):
        super().__init__(message)
        self.message, self.line, self.column, self.hint = message, line, column, hint


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
        self.python_levels: list[tuple[int, int]] = [(0, 0)]
        self.continued: tuple[int, bool] | None = None

    def process(self, stream):
        self.open_brackets = []
        self.nested_lists = 0  # the '[' and '{' among the open brackets
        self.minus_run = 0  # '-' tokens in a row
        # Python's stack of indentations, each as (columns, characters): every
        # line that starts a statement is checked against it as Python does,
        # including the lines of a directive's value (Snakemake reads those as Python).
        self.python_levels = [(0, 0)]
        self.continued = None
        return super().process(stream)

    def unclosed(self) -> Token | None:
        """The innermost bracket open after the last token handed on, if any."""
        return self.open_brackets[-1] if self.open_brackets else None

    def continuing(self) -> tuple[int, bool] | None:
        """Where the last line read goes on with a directive's value: its line,
        and whether that directive stands on a ``rule NAME:`` line; or None."""
        return self.continued

    def _process(self, stream):
        line_start: list[str] = []  # the first token types of the logical line
        continuing_from: int | None = None  # indent of the directive whose value continues
        last = None
        for token in stream:
            last = token
            if token.type == self.NL_type:
                if self.paren_level > 0:
                    continue
                indent = self._check_python_indent(token)
                if continuing_from is None and _opens_a_value(line_start):
                    continuing_from = self.indent_level[-1]
                if continuing_from is not None and indent > continuing_from:
                    line = token.end_line if token.end_line is not None else token.line
                    self.continued = (line, line_start[0] in _RULE_KEYWORDS)
                    continue  # the directive's value goes on
                continuing_from = self.continued = None
                line_start = []
                yield from self._handle_nl(token, indent)
                continue
            if len(line_start) < _LINE_START:
                line_start.append(token.type)
            yield token
            self._track(token)
        if self.paren_level > 0:
            tok = self.open_brackets[-1]
            raise Positioned(f"'{tok.value}' is never closed", tok.line, tok.column)
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
            raise Positioned(f"unmatched '{token.value}'", token.line, token.column)
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
            raise Positioned(
                "this line's indentation matches no enclosing block", line, len(_whitespace_of(token)) + 1
            )

    def _check_python_indent(self, token: Token) -> int:
        """The columns of the line after ``token`` (a line break); refused, as
        Python refuses it, if its depth against the enclosing lines depends on
        how wide a tab is: compared with a tab read as 8 columns and as 1
        column, it must be deeper, the same or shallower both times."""
        whitespace = _whitespace_of(token)
        col, alt = indent_width(whitespace), len(whitespace)
        levels = self.python_levels
        top_col, top_alt = levels[-1]
        consistent = True
        if col == top_col:
            consistent = alt == top_alt
        elif col > top_col:
            consistent = alt > top_alt
            levels.append((col, alt))
        else:
            while len(levels) > 1 and col < levels[-1][0]:
                levels.pop()
            if col == levels[-1][0]:
                consistent = alt == levels[-1][1]
            else:  # no enclosing line has this depth (the value of a directive may go on so)
                consistent = alt > levels[-1][1]
                levels.append((col, alt))
        if not consistent:
            line = token.end_line if token.end_line is not None else token.line
            raise Positioned("inconsistent use of tabs and spaces in indentation", line, alt + 1,
                             MIXED_INDENT_HINT)
        return col


# How many tokens of a line tell whether it opens a directive's value:
# ``input:``, or a directive on the ``rule NAME:`` line (``rule all: input: ...``).
_LINE_START = 5
_RULE_KEYWORDS = ("RULE", "CHECKPOINT")


def _opens_a_value(line_start: list[str]) -> bool:
    if line_start[:2] == ["NAME", "COLON"]:
        return True
    if line_start[:1] and line_start[0] in _RULE_KEYWORDS:
        rest = line_start[2:] if line_start[1:2] == ["NAME"] else line_start[1:]
        return rest[:3] == ["COLON", "NAME", "COLON"]
    return False


def _too_deep(token: Token) -> Positioned:
    return Positioned("expression nested too deeply", token.line, token.column, DEPTH_HINT)


def _whitespace_of(nl_token: Token) -> str:
    """The indentation of the line a line-break token leads to."""
    return nl_token.rsplit("\n", 1)[-1] if "\n" in nl_token else ""
