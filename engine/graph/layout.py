"""Where to draw each node and edge of a graph, left to right, without
Graphviz: a small layered (Sugiyama) layout.

1. Layers: the longest path from the sources, a source then moved next to
   its first consumer. An edge that closes a cycle (a rule graph can have
   one) is left out of the layering and drawn backwards.
2. An edge that spans several layers gets a point in each layer between,
   so that it runs between the nodes there, not through them.
3. Order within a layer: barycenter sweeps, down and up, keeping the order
   with the fewest crossings.
4. Positions: a layer is a column as wide as its widest node; in it each
   node goes as near the mean height of its neighbours as the order and the
   gaps allow (isotonic regression, pool adjacent violators), in sweeps.

Sizes and coordinates are in pixels; a node's position is its top left.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

LAYER_GAP = 64  # between columns
NODE_GAP = 14  # between nodes of a column
MARGIN = 12
SWEEPS = 6  # ordering rounds (each one down and one up)
MAX_BEND_POINTS = 20_000  # beyond, long edges are drawn straight across


Point = tuple[float, float]


@dataclass
class Layout:
    x: list[float]  # each node's left
    y: list[float]  # each node's top
    edges: list[tuple[int, int, list[Point], bool]]  # (from, to, points, drawn backwards)
    width: float
    height: float


def layout(sizes: list[tuple[float, float]], edges: list[tuple[int, int]]) -> Layout:
    """Positions for nodes of ``sizes`` (width, height) joined by ``edges``
    (from, to), each from a node left of the other where the graph allows."""
    n = len(sizes)
    edges = list(dict.fromkeys((a, b) for a, b in edges if a != b))
    forward, backward = _split_cycles(n, edges)
    layer = _layers(n, forward)
    chains = _chains(forward, layer)
    node_layer, links = _with_bend_points(forward, chains, layer)
    height = [h for _, h in sizes] + [2.0] * (len(node_layer) - n)
    columns = _order(node_layer, links)
    y = _heights(columns, links, height)
    widths = [max((sizes[v][0] for v in col if v < n), default=0.0) for col in columns]
    lefts = [MARGIN + sum(widths[:i]) + LAYER_GAP * i for i in range(len(columns))]
    x = [lefts[node_layer[v]] + (widths[node_layer[v]] - sizes[v][0]) / 2 for v in range(n)]
    routes = _routes(forward, backward, chains, n, x, y, sizes, lefts, widths)
    right = max((x[v] + sizes[v][0] for v in range(n)), default=0.0)
    bottom = max((top + h for top, h in zip(y, height, strict=True)), default=0.0)
    return Layout(x, y[:n], routes, right + MARGIN, bottom + MARGIN)


def _with_bend_points(forward: list[tuple[int, int]], chains: dict[tuple[int, int], list[int]],
                      layer: list[int]) -> tuple[list[int], list[tuple[int, int]]]:
    """Every node's layer, bend points included (nodes of their own, from
    index n on, in the order of the edges), and the links between them."""
    node_layer = list(layer)
    links: list[tuple[int, int]] = []
    for a, b in forward:
        path = [a]
        for lay in chains.get((a, b), ()):
            path.append(len(node_layer))
            node_layer.append(lay)
        path.append(b)
        links += pairwise(path)
    return node_layer, links


def _split_cycles(n: int, edges: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The edges that keep the graph acyclic, and those that close a cycle
    (found by a depth-first walk, iterative: a graph may be deep)."""
    out: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        out[a].append(b)
    state = [0] * n  # 0 unseen, 1 on the walk's path, 2 done
    back: set[tuple[int, int]] = set()
    for root in range(n):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, 0)]
        while stack:
            v, i = stack.pop()
            if i < len(out[v]):
                stack.append((v, i + 1))
                w = out[v][i]
                if state[w] == 1:
                    back.add((v, w))
                elif state[w] == 0:
                    state[w] = 1
                    stack.append((w, 0))
            else:
                state[v] = 2
    return [e for e in edges if e not in back], [e for e in edges if e in back]


def _layers(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Each node's layer: the longest path to it from a source; a source
    then sits one layer before its nearest consumer."""
    incoming = [0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        out[a].append(b)
        incoming[b] += 1
    layer = [0] * n
    ready = [v for v in range(n) if incoming[v] == 0]
    sources = list(ready)
    while ready:
        v = ready.pop()
        for w in out[v]:
            layer[w] = max(layer[w], layer[v] + 1)
            incoming[w] -= 1
            if incoming[w] == 0:
                ready.append(w)
    for v in sources:
        if out[v]:
            layer[v] = min(layer[w] for w in out[v]) - 1
    return layer


def _chains(edges: list[tuple[int, int]], layer: list[int]) -> dict[tuple[int, int], list[int]]:
    """The layers each long edge passes through, while there are points to spare."""
    chains: dict[tuple[int, int], list[int]] = {}
    spent = 0
    for a, b in edges:
        span = layer[b] - layer[a]
        if span > 1 and spent + span - 1 <= MAX_BEND_POINTS:
            chains[(a, b)] = list(range(layer[a] + 1, layer[b]))
            spent += span - 1
    return chains


def _order(layer: list[int], links: list[tuple[int, int]]) -> list[list[int]]:
    """The nodes of each layer, top to bottom, with few crossings."""
    columns: list[list[int]] = [[] for _ in range(max(layer, default=-1) + 1)]
    for v, lay in enumerate(layer):
        columns[lay].append(v)
    ins: list[list[int]] = [[] for _ in layer]
    outs: list[list[int]] = [[] for _ in layer]
    for a, b in links:
        outs[a].append(b)
        ins[b].append(a)
    best, fewest = [list(c) for c in columns], _crossings(columns, outs)
    for _ in range(SWEEPS):
        for i in range(1, len(columns)):
            _sort_by_barycenter(columns[i], columns[i - 1], ins)
        for i in range(len(columns) - 2, -1, -1):
            _sort_by_barycenter(columns[i], columns[i + 1], outs)
        crossings = _crossings(columns, outs)
        if crossings < fewest:
            best, fewest = [list(c) for c in columns], crossings
        if fewest == 0:
            break
    return best


def _sort_by_barycenter(column: list[int], fixed: list[int], neighbours: list[list[int]]) -> None:
    place = {v: i for i, v in enumerate(fixed)}
    keys = {}
    for i, v in enumerate(column):
        near = [place[w] for w in neighbours[v] if w in place]
        keys[v] = sum(near) / len(near) if near else i
    column.sort(key=keys.__getitem__)


def _crossings(columns: list[list[int]], outs: list[list[int]]) -> int:
    """Edge crossings between neighbouring layers (inversions, counted by merge sort)."""
    total = 0
    for left, right in pairwise(columns):
        place = {v: i for i, v in enumerate(right)}
        ends = [end for v in left for end in sorted(place[w] for w in outs[v] if w in place)]
        total += _inversions(ends)
    return total


def _inversions(values: list[int]) -> int:
    if len(values) < 2:
        return 0
    mid = len(values) // 2
    left, right = values[:mid], values[mid:]
    count = _inversions(left) + _inversions(right)
    left.sort()
    right.sort()
    i = 0
    for r in right:  # each right value is passed by the left values greater than it
        while i < len(left) and left[i] <= r:
            i += 1
        count += len(left) - i
    return count


def _heights(columns: list[list[int]], links: list[tuple[int, int]], height: list[float]) -> list[float]:
    """Each node's top: stacked in order, then moved toward its neighbours."""
    ins: list[list[int]] = [[] for _ in height]
    outs: list[list[int]] = [[] for _ in height]
    for a, b in links:
        outs[a].append(b)
        ins[b].append(a)
    y = [0.0] * len(height)
    for col in columns:
        top = MARGIN
        for v in col:
            y[v] = top
            top += height[v] + NODE_GAP
    for _ in range(4):
        for col in columns[1:]:
            _settle(col, ins, y, height)
        for col in reversed(columns[:-1]):
            _settle(col, outs, y, height)
    low = min(y, default=MARGIN)
    return [v - low + MARGIN for v in y]


def _settle(column: list[int], neighbours: list[list[int]], y: list[float], height: list[float]) -> None:
    """Move the nodes of a column as near the mean centre of their neighbours
    as keeping their order and gaps allows (least squares)."""
    offsets, wanted, acc = [], [], 0.0
    for v in column:
        near = [y[w] + height[w] / 2 for w in neighbours[v]]
        centre = sum(near) / len(near) if near else y[v] + height[v] / 2
        offsets.append(acc)
        wanted.append(centre - height[v] / 2 - acc)
        acc += height[v] + NODE_GAP
    for v, top, offset in zip(column, _increasing(wanted), offsets, strict=True):
        y[v] = top + offset


def _increasing(values: list[float]) -> list[float]:
    """The non-decreasing sequence nearest ``values`` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, c2 = blocks.pop()
            m1, c1 = blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    return [m for m, c in blocks for _ in range(int(c))]


def _routes(forward: list[tuple[int, int]], backward: list[tuple[int, int]], chains: dict[tuple[int, int], list[int]],
            n: int, x: list[float], y: list[float], sizes: list[tuple[float, float]], lefts: list[float],
            widths: list[float]) -> list[tuple[int, int, list[Point], bool]]:
    """Each edge's points: from its tail's right side, across the columns it
    passes (level through each; bend points are nodes ``n`` and above, in
    the order of the edges), to its head's left side."""
    routes = []
    extra = n
    for a, b in forward:
        points = [(x[a] + sizes[a][0], y[a] + sizes[a][1] / 2)]
        for lay in chains.get((a, b), ()):
            points += [(lefts[lay], y[extra] + 1), (lefts[lay] + widths[lay], y[extra] + 1)]
            extra += 1
        points.append((x[b], y[b] + sizes[b][1] / 2))
        routes.append((a, b, points, False))
    for a, b in backward:
        routes.append((a, b, [(x[a] + sizes[a][0] / 2, y[a] + sizes[a][1]),
                              (x[b] + sizes[b][0] / 2, y[b] + sizes[b][1])], True))
    return routes
