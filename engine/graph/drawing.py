"""A graph (``render.Graph``) drawn as inline SVG, each node coloured by
what a run did with its jobs (ran, up to date, failed, not reached); the
positions come from ``layout``, so no Graphviz is needed. Also the one
escaping of names for HTML and SVG (a file name may hold anything) and the
status colours, which the run's timeline shares."""

from __future__ import annotations

import html
import re

from .layout import layout
from .render import Graph

# status -> (legend text, fill, border); in the legend's order
RUN_STATUS = {
    "ran": ("ran", "#b2f2bb", "#2b8a3e"),
    "uptodate": ("up to date", "#e9ecef", "#868e96"),
    "failed": ("failed", "#ffc9c9", "#c92a2a"),
    "notreached": ("not reached", "#fff3bf", "#e67700"),
}
CHAR_WIDTH = 7.2  # of the 12 px monospace font the labels are set in
LINE_HEIGHT = 15
LONGEST_LINE = 48  # characters; the tooltip has the whole label
BAR_HEIGHT = 6  # a grouped node's strip of its jobs' statuses

_UNSEEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def esc(text: str) -> str:
    """``text`` safe inside HTML or SVG, text or attribute: markup escaped,
    control and bidi characters shown as ``\\x1b``, and the bytes of a
    file name that is not UTF-8 as ``\\xe9``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = _UNSEEN.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)
    return html.escape(text, quote=True)


def count_text(counts: dict[str, int]) -> str:
    """``40 ran · 8 up to date``, in the legend's order."""
    return " · ".join(f"{counts[s]:,} {RUN_STATUS[s][0]}" for s in RUN_STATUS if counts.get(s))


def graph_svg(g: Graph, counts: dict[str, dict[str, int]]) -> str:
    """``g`` as an ``<svg>`` element; ``counts`` holds, per node key, how many
    of its jobs ended in each status. A node of several jobs says so and
    shows the mix as a strip."""
    labels = [_lines(node.lines, counts.get(node.key, {})) for node in g.nodes]
    sizes = [_size(lines, _is_group(counts.get(node.key, {}))) for node, lines in zip(g.nodes, labels, strict=True)]
    index = {node.key: i for i, node in enumerate(g.nodes)}
    placed = layout(sizes, [(index[a], index[b]) for a, b in g.edges])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{placed.width:.0f}" height="{placed.height:.0f}" '
           f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" role="img" aria-label="job graph">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#868e96"/></marker></defs>']
    for _, _, points, backwards in placed.edges:
        dashed = ' stroke-dasharray="5 4"' if backwards else ""
        out.append(f'<path class="edge" d="{_path(points, backwards)}" fill="none" stroke="#adb5bd" '
                   f'stroke-width="1.3" marker-end="url(#arrow)"{dashed}/>')
    for i, node in enumerate(g.nodes):
        out.append(_node(node.lines, labels[i], counts.get(node.key, {}), placed.x[i], placed.y[i], sizes[i]))
    out.append("</svg>")
    return "\n".join(out)


def _is_group(counts: dict[str, int]) -> bool:
    return sum(counts.values()) > 1


def _lines(lines: list[str], counts: dict[str, int]) -> list[str]:
    """The label as drawn: each line cut to fit, and the counts of a group."""
    shown = [t if len(t) <= LONGEST_LINE else t[:LONGEST_LINE - 1] + "…" for t in lines]
    return [*shown, count_text(counts)] if _is_group(counts) else shown


def _size(lines: list[str], group: bool) -> tuple[float, float]:
    width = 18 + CHAR_WIDTH * max((len(t) for t in lines), default=4)
    return width, 10 + LINE_HEIGHT * len(lines) + (BAR_HEIGHT + 4 if group else 0)


def _status(counts: dict[str, int]) -> str | None:
    """The status most of a node's jobs ended in."""
    return max(RUN_STATUS, key=lambda s: counts.get(s, 0)) if counts else None


def _node(full: list[str], lines: list[str], counts: dict[str, int], x: float, y: float,
          size: tuple[float, float]) -> str:
    width, height = size
    status = _status(counts)
    _, fill, border = RUN_STATUS[status] if status else ("", "#ffffff", "#868e96")
    dashed = ' stroke-dasharray="4 3"' if status == "notreached" else ""
    tip = "\n".join([*full, count_text(counts)] if counts else full)
    parts = [f'<g class="node status-{status or "none"}"><title>{esc(tip)}</title>',
             f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" rx="5" fill="{fill}" '
             f'stroke="{border}" stroke-width="1.4"{dashed}/>',
             f'<text x="{x + 9:.1f}" y="{y + 5:.1f}">']
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if i == 0 else ""
        parts.append(f'<tspan x="{x + 9:.1f}" dy="{LINE_HEIGHT}"{weight}>{esc(line)}</tspan>')
    parts.append("</text>")
    if _is_group(counts):
        parts.append(_strip(counts, x + 9, y + height - BAR_HEIGHT - 6, width - 18))
    parts.append("</g>")
    return "".join(parts)


def _strip(counts: dict[str, int], x: float, y: float, width: float) -> str:
    """A bar split by the share of the node's jobs in each status."""
    total = sum(counts.values())
    out, left = [], x
    for status, (_, _, border) in RUN_STATUS.items():
        share = width * counts.get(status, 0) / total
        if share > 0:
            out.append(f'<rect x="{left:.1f}" y="{y:.1f}" width="{share:.1f}" height="{BAR_HEIGHT}" '
                       f'fill="{border}"/>')
            left += share
    return "".join(out)


def _path(points: list[tuple[float, float]], backwards: bool) -> str:
    """Curves between columns and straight runs through them (where an edge
    passes a column, it has two points, level, one each side)."""
    (x0, y0), rest = points[0], points[1:]
    if backwards:  # below both nodes, right to left
        (x1, y1), = rest
        return f"M{x0:.1f},{y0:.1f}C{x0:.1f},{y0 + 50:.1f} {x1:.1f},{y1 + 50:.1f} {x1:.1f},{y1:.1f}"
    d = [f"M{x0:.1f},{y0:.1f}"]
    for i, (x1, y1) in enumerate(rest):
        if i % 2:
            d.append(f"L{x1:.1f},{y1:.1f}")
        else:
            mid = (x0 + x1) / 2
            d.append(f"C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return "".join(d)
