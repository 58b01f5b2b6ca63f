"""A run's job attempts on a timeline (a Gantt chart), drawn as inline SVG:
one row per worker slot, one bar per attempt, coloured by how it ended,
its tooltip saying what ran, how long, with what CPU and memory, and why.

Slots are given out as a run would have: attempts by start time, each to
the lowest slot free when it started. Past ``MAX_BARS`` attempts, the
attempts one slot ran within one time bucket are one bar, whose tooltip
counts them by rule (a browser draws tens of thousands of bars slowly, and
they would be narrower than a pixel anyway); ``Timeline.note`` says so.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from dataclasses import dataclass

from ..graph.drawing import RUN_STATUS, esc
from .records import AttemptRow

MAX_BARS = 2500
WIDTH = 1100  # of the whole drawing, in pixels
LEFT = 64  # the slot labels' column
TOP = 8
AXIS = 26  # the time axis below the rows


@dataclass(frozen=True)
class Bar:
    slot: int
    start: float  # seconds from the run's start
    end: float
    failed: bool
    tip: str


@dataclass(frozen=True)
class Timeline:
    bars: list[Bar]
    slots: int
    span: float  # seconds, from the run's start to its end (or its last attempt's)
    note: str | None  # how the attempts were merged, if they were


def slots(attempts: list[AttemptRow]) -> list[int]:
    """Each attempt's worker slot (attempts in start order): the lowest slot
    no other attempt holds when it starts."""
    busy: list[tuple[float, int]] = []  # (ended, slot)
    free: list[int] = []
    out = []
    for a in attempts:
        while busy and busy[0][0] <= a.started:
            heapq.heappush(free, heapq.heappop(busy)[1])
        slot = heapq.heappop(free) if free else len(busy)
        heapq.heappush(busy, (max(a.ended, a.started), slot))
        out.append(slot)
    return out


def timeline(attempts: list[AttemptRow], started: float, ended: float | None) -> Timeline:
    """The bars for a run's attempts (in start order), from the run's start."""
    ordered = sorted(attempts, key=lambda a: (a.started, a.ended))
    slot_of = slots(ordered)
    count = max(slot_of, default=-1) + 1
    last = max((a.ended for a in ordered), default=started)
    span = max((ended if ended is not None else last) - started, last - started, 1e-3)
    if len(ordered) <= MAX_BARS:
        bars = [Bar(s, a.started - started, a.ended - started, a.status != 0, attempt_tip(a, started))
                for a, s in zip(ordered, slot_of, strict=True)]
        return Timeline(bars, count, span, None)
    buckets = max(1, MAX_BARS // max(count, 1))
    width = span / buckets
    groups: dict[tuple[int, int], list[AttemptRow]] = {}
    for a, s in zip(ordered, slot_of, strict=True):
        groups.setdefault((s, min(buckets - 1, int((a.started - started) / width))), []).append(a)
    bars = [_merged(s, group, started) for (s, _), group in groups.items()]
    note = (f"{len(ordered):,} attempts are drawn as {len(bars):,} bars: each bar is the attempts one worker slot "
            f"started within {seconds_text(width)} (its tooltip counts them by rule).")
    return Timeline(bars, count, span, note)


def _merged(slot: int, group: list[AttemptRow], started: float) -> Bar:
    failed = sum(a.status != 0 for a in group)
    rules = Counter(a.rule for a in group).most_common()
    shown = ", ".join(f"{n} × {rule}" for rule, n in rules[:5]) + (", ..." if len(rules) > 5 else "")
    first, last = group[0].started - started, max(a.ended for a in group) - started
    tip = (f"{len(group)} attempts, from {seconds_text(first)} to {seconds_text(last)}: {shown}"
           + (f"\n{failed} failed" if failed else ""))
    return Bar(slot, first, last, failed > 0, tip)


def attempt_tip(a: AttemptRow, started: float) -> str:
    """What the tooltip of an attempt's bar says."""
    lines = [a.label,
             (f"attempt {a.attempt}, " if a.attempt > 1 else "") + ("ok" if a.status == 0 else f"failed (status {a.status})"),
             f"{seconds_text(a.seconds)}, from {seconds_text(a.started - started)} to {seconds_text(a.ended - started)}"]
    used = []
    if a.cpu is not None:
        used.append(f"CPU {seconds_text(a.cpu)}")
    if a.rss_kb is not None:
        used.append(f"peak memory {size_text(a.rss_kb * 1024)}")
    if a.bytes_in is not None:
        used.append(f"read {size_text(a.bytes_in)}")
    if a.bytes_out is not None:
        used.append(f"wrote {size_text(a.bytes_out)}")
    if used:
        lines.append(", ".join(used))
    if a.reason:
        lines.append(f"why: {a.reason}")
    return "\n".join(lines)


def size_text(n: float) -> str:
    """``512 B``, ``1.5 KB``, ``210 MB``: powers of 1024, as memory is counted."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 100 else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def seconds_text(s: float) -> str:
    """``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def when_text(t: float) -> str:
    """A moment in local time: ``2026-12-06 22:46:37``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def timeline_svg(t: Timeline) -> str:
    """The timeline as an ``<svg>`` element: rows of bars over a time axis."""
    row = max(3, min(20, 640 // max(t.slots, 1)))
    plot = WIDTH - LEFT - 16
    height = TOP + row * max(t.slots, 1) + AXIS
    scale = plot / t.span
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="timeline">']
    label_every = max(1, math.ceil(12 / row))
    for s in range(t.slots):
        y = TOP + s * row
        if s % 2:
            out.append(f'<rect x="{LEFT}" y="{y}" width="{plot}" height="{row}" fill="#f8f9fa"/>')
        if s % label_every == 0:
            out.append(f'<text class="slot" x="{LEFT - 8}" y="{y + row / 2 + 4:.1f}" text-anchor="end">'
                       f"slot {s + 1}</text>")
    out += _axis(t.span, scale, TOP + row * max(t.slots, 1))
    pad = 1 if row >= 8 else 0
    for bar in t.bars:
        _, fill, border = RUN_STATUS["failed" if bar.failed else "ran"]
        x = LEFT + bar.start * scale
        w = max(1.0, (bar.end - bar.start) * scale)
        out.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + bar.slot * row + pad}" width="{w:.1f}" '
                   f'height="{row - 2 * pad}" fill="{fill}" stroke="{border}" stroke-width="{0.8 if pad else 0}">'
                   f"<title>{esc(bar.tip)}</title></rect>")
    out.append("</svg>")
    return "\n".join(out)


def _axis(span: float, scale: float, y: float) -> list[str]:
    """Ticks at a round step, about ten across, each with its time."""
    step = _round_step(span / 10)
    out = [f'<line x1="{LEFT}" y1="{y}" x2="{LEFT + span * scale:.1f}" y2="{y}" stroke="#868e96"/>']
    tick = 0.0
    while tick <= span + 1e-9:
        x = LEFT + tick * scale
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{y + 4}" stroke="#dee2e6" stroke-width="0.6"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{y + 17}" text-anchor="middle">{_tick(tick, step)}</text>')
        tick += step
    return out


def _round_step(rough: float) -> float:
    """1, 2 or 5 times a power of ten (or 15 s, 30 s, minutes, hours), at least ``rough``."""
    for step in (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if rough <= step and rough > 30:
            return float(step)
    power = 10 ** math.floor(math.log10(max(rough, 1e-6)))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough)


def _tick(t: float, step: float) -> str:
    if step >= 60:
        return f"{int(t // 3600)}:{int(t % 3600 // 60):02d}:{int(t % 60):02d}" if t >= 3600 else \
            f"{int(t // 60)}:{int(t % 60):02d}"
    return f"{t:.{max(0, -math.floor(math.log10(step)))}f} s"
