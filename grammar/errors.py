"""The one error type of the grammar layer.

The engine reuses it for mistakes it finds later in the same text (an unknown
name, a bad wildcard), so every Flowfile mistake prints the same way:
``file:line:col: message``, the source line, a caret, and a hint. However
long the source line, its excerpt fits on one terminal line, cut around the
column with an ellipsis where text was left out; names and tokens quoted in
the message are cut the same way.
"""

from __future__ import annotations

import difflib
import re
import shutil
import unicodedata
from itertools import islice

from flow import FlowError

INDENT = "    "  # before the excerpt and its caret
ELLIPSIS = "\u2026"
MIN_WIDTH, MAX_WIDTH = 40, 120  # bounds on an excerpt line, indent included
QUOTE_LIMIT = 60  # longest name or token a message quotes whole
_QUOTED = re.compile(rf"`([^`\n]{{{QUOTE_LIMIT + 1},}})`")


class FlowfileError(FlowError):
    """A mistake in a Flowfile, at file:line:col (exit 2, as every ``FlowError``
    unless said): rendered with the source line, a caret and the hint."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
        source_line: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.hint = hint
        self.source_line = source_line

    @classmethod
    def at(cls, pos, message: str, hint: str | None = None) -> FlowfileError:
        """An error at an AST position (anything with file, line, column)."""
        return cls(message, pos.file, pos.line, pos.column, hint)

    def location(self) -> str:
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def _source(self) -> str | None:
        if self.source_line is not None:
            return self.source_line
        if self.file is None or self.line is None or self.line < 1:
            return None
        return read_line(self.file, self.line)

    def __str__(self) -> str:
        return self.render(prefix="")

    def render(self, prefix: str = "error: ") -> str:
        """The message as shown to people: location, message, source excerpt,
        caret, hint. The excerpt's lines fit the terminal's width, kept within
        MIN_WIDTH..MAX_WIDTH."""
        where = self.location()
        message = _QUOTED.sub(lambda m: f"`{clip(m.group(1))}`", self.message)
        out = f"{where}: {prefix}{message}" if where else f"{prefix}{message}"
        src = self._source()
        if src is not None and self.column is not None:
            shown, caret = excerpt(src, self.column, excerpt_width() - len(INDENT))
            out += f"\n{INDENT}{shown}\n{INDENT}{' ' * caret}^"
        if self.hint:
            out += f"\n{self.hint}"
        return out


def did_you_mean(word: str, choices, cutoff: float = 0.6) -> str:
    """``Did you mean `X`?`` when one of ``choices`` is close to ``word``
    (``difflib``'s ratio of at least ``cutoff``), else "". Shared by the
    grammar and the engine, so that every misspelling is answered alike."""
    close = difflib.get_close_matches(word, [c for c in choices if c != word], n=1, cutoff=cutoff)
    return f"Did you mean `{clip(close[0])}`?" if close else ""


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text``, or its start and an ellipsis when it is longer than ``limit``."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def excerpt_width() -> int:
    return max(MIN_WIDTH, min(shutil.get_terminal_size((100, 24)).columns, MAX_WIDTH))


def read_line(file: str, line: int) -> str | None:
    """Line ``line`` (1-based, lines end at \\n only) of a file, reading no further."""
    try:
        with open(file, "rb") as f:
            raw = next(islice(f, line - 1, None), None)
    except OSError:
        return None
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace").removesuffix("\n").removesuffix("\r")


def excerpt(line: str, column: int, width: int) -> tuple[str, int]:
    """The part of ``line`` to show, at most ``width`` terminal columns, and
    the offset of the caret under column ``column`` (1-based, in characters)."""
    at = min(max(column - 1, 0), len(line))
    start, end = _window(line, at, width)
    shown = "".join(_printable(c) for c in line[start:end])
    caret = sum(_cells(c) for c in shown[: at - start])
    if end == len(line):
        shown = shown.rstrip()
    if start > 0:
        shown, caret = ELLIPSIS + shown, caret + 1
    if end < len(line):
        shown += ELLIPSIS
    return shown, caret


def _window(line: str, at: int, width: int) -> tuple[int, int]:
    """The characters [start, end) to show around index ``at``: the whole
    line if it fits in ``width`` columns, else as many on each side of ``at``
    as fit with a column kept for an ellipsis at each end. Looks at no more
    characters than it shows, plus one on each side."""
    caret_past_end = at == len(line)
    if len(line) <= width and sum(map(_cells, line)) + caret_past_end <= width:
        return 0, len(line)
    start, end = at, at + (not caret_past_end)
    room = width - 2 - (1 if caret_past_end else _cells(line[at]))
    grew = True
    while grew:
        grew = False
        if start > 0 and _cells(line[start - 1]) <= room:
            start, room, grew = start - 1, room - _cells(line[start - 1]), True
        if end < len(line) and _cells(line[end]) <= room:
            end, room, grew = end + 1, room - _cells(line[end]), True
    return start, end


def _printable(char: str) -> str:
    """Tabs as one space (columns count characters), and any other control
    or line-separating character as '?', so that the excerpt stays one line."""
    if char == "\t":
        return " "
    return "?" if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char


def _cells(char: str) -> int:
    """Terminal columns a character takes: 2 for wide East Asian ones, 0 for
    combining marks and format characters, else 1."""
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
