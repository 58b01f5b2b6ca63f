"""The progress bar of a run on a terminal: one line at the bottom (counts,
bar, elapsed time, ETA, the jobs running now), with flow's lines and the
jobs' stderr written above it, where the scroll-back keeps them. What the
line says is the ``Reporter``'s; this module draws it.

rich renders the line and the coloured lines (failures red, retries
yellow), and so honours the terminal's colours; with ``NO_COLOR`` set
nothing is coloured or styled at all. The line itself is kept by hand
(carriage return, erase the line, draw it): rich's ``Live`` can only print
rich renderables above itself, and a job's stderr must pass through as the
job wrote it, its colours and control characters included. That stderr
comes from other threads, so every write takes one lock; a job's line is
held until its newline, so that the bar never lands in the middle of it.

Importing this module imports rich: it is imported only once a bar is drawn.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.text import Text

CLEAR = "\r\x1b[2K"  # back to the start of the line, and erase it
BAR_WIDTH = 24  # at most; a fifth of a narrow terminal
HELD_BYTES = 65536  # a job's line longer than this is written without waiting for its end


@dataclass
class Status:
    """What the bar shows."""

    done: int
    total: int
    failed: int = 0
    elapsed: float = 0.0
    eta: float | None = None
    running: list[str] = field(default_factory=list)  # labels, escaped, the oldest first


def clock(seconds: float) -> str:
    """``0:35``, ``1:02``, ``1:02:03``."""
    m, s = divmod(max(0, round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def no_color() -> bool:
    """Whether ``NO_COLOR`` asks for no colour (set and not empty, as no-color.org says)."""
    return os.environ.get("NO_COLOR", "") != ""


class LiveDisplay:
    """A progress line kept at the bottom of a terminal."""

    def __init__(self, stream: TextIO):
        self.out = stream
        plain = no_color()
        self.console = Console(file=stream, force_terminal=True, color_system=None if plain else "auto",
                               no_color=plain, highlight=False, markup=False, emoji=False)
        self.lock = threading.RLock()  # (a signal's handler may write while a write is under way)
        self.line = ""  # the bar as drawn last ("" while none is shown)
        self.held = b""  # a job's stderr not ended by a newline yet
        self.closed = False

    def write(self, lines: Iterable[str | tuple[str, str]]) -> None:
        """Lines above the bar, as given (flow's already escaped, a job's own
        words raw), a (text, style) pair in its style; the bar as drawn last
        below them (drawing it anew is the caller's, at its own pace)."""
        body = "".join((line if isinstance(line, str) else self._render(Text(*line))) + "\n" for line in lines)
        with self.lock:
            self.out.write(self._clear() + body + self.line)
            self.out.flush()

    def draw(self, status: Status) -> None:
        width = max(20, self.console.width - 1)
        line = self._render(self._bar(status, min(BAR_WIDTH, width // 5)), width=width)
        with self.lock:
            if self.closed:
                return
            self.line = line
            self.out.write(CLEAR + line)
            self.out.flush()

    def job_output(self, data: bytes) -> None:
        """A job's stderr (from any thread): its whole lines above the bar.
        A terminal gone (closed, hung up) loses them, as it would lose them
        written straight, and never stops the thread that passes them on."""
        try:
            self._job_output(data)
        except (OSError, ValueError):
            pass

    def _job_output(self, data: bytes) -> None:
        with self.lock:
            if self.closed:
                self._raw(data)
                return
            data = self.held + data
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < HELD_BYTES:
                self.held = data
                return
            lines, self.held = (data[:cut], data[cut:]) if cut else (data + b"\n", b"")
            self.out.write(self._clear())
            self._raw(lines)
            self.out.write(self.line)
            self.out.flush()

    def close(self) -> None:
        """Take the bar away, and write what a job left without a newline."""
        with self.lock:
            self.out.write(self._clear())
            if self.held:
                self._raw(self.held + b"\n")
                self.held = b""
            self.out.flush()
            self.line = ""
            self.closed = True

    # drawing ----------------------------------------------------------------------

    def _clear(self) -> str:
        return CLEAR if self.line else ""

    def _raw(self, data: bytes) -> None:
        self.out.flush()
        buffer = getattr(self.out, "buffer", None)
        if buffer is None:
            self.out.write(data.decode(errors="replace"))
        else:
            buffer.write(data)
            buffer.flush()

    def _render(self, text: Text, width: int | None = None) -> str:
        """``text`` as the terminal takes it (its styles as escapes); cut
        to ``width`` if given, else as long as it is (the terminal wraps it)."""
        with self.console.capture() as captured:
            if width is None:
                self.console.print(text, end="", soft_wrap=True)
            else:
                self.console.print(text, end="", no_wrap=True, overflow="ellipsis", width=width)
        return captured.get().rstrip("\n")

    def _bar(self, s: Status, bar_width: int) -> Text:
        """``[12/40] ━━━━━━━━╺━━━━━ 30% · 1:02 elapsed · ETA 0:35 · running 3: a, b, c, ...``"""
        line = Text(f"[{s.done}/{s.total}] ")
        bar = ProgressBar(total=max(s.total, 1), completed=min(s.done, s.total), width=bar_width,
                          style="bright_black", complete_style="cyan", finished_style="green")
        for segment in self.console.render(bar, self.console.options.update(width=bar_width)):
            line.append(segment.text, segment.style)
        percent = 100 * s.done // s.total if s.total else 100
        line.append(f" {percent}% · {clock(s.elapsed)} elapsed")
        if s.eta is not None:
            line.append(f" · ETA {clock(s.eta)}")
        if s.failed:
            line.append(" · ")
            line.append(f"{s.failed} failed", style="red")
        if s.running:
            more = ", ..." if len(s.running) > 3 else ""
            line.append(f" · running {len(s.running)}: " + ", ".join(s.running[:3]) + more)
        return line
