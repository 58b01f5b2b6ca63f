"""The one error type of the grammar layer.

The engine reuses it for mistakes it finds later in the same text (an unknown
name, a bad wildcard), so every Flowfile mistake prints the same way:
``file:line:col: message``, the source line, a caret, and a hint.
"""

from __future__ import annotations

from pathlib import Path


class FlowfileError(Exception):
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
        if self.file is None or self.line is None:
            return None
        try:
            lines = Path(self.file).read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n").split("\n")
        except OSError:
            return None
        if 1 <= self.line <= len(lines):
            return lines[self.line - 1]
        return None

    def __str__(self) -> str:
        return self.render(prefix="")

    def render(self, prefix: str = "error: ") -> str:
        """The message as shown to people: location, message, source line, caret, hint."""
        where = self.location()
        out = f"{where}: {prefix}{self.message}" if where else f"{prefix}{self.message}"
        src = self._source()
        if src is not None and self.column is not None:
            shown = src.expandtabs(1).rstrip()
            out += f"\n    {shown}\n    {' ' * max(self.column - 1, 0)}^"
        if self.hint:
            out += f"\n{self.hint}"
        return out
