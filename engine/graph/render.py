"""The graph as text: Graphviz DOT and Mermaid (``flow dag``).

Three shapes of one graph, all drawn from the jobs the targets need:

- the job graph, one node a job (``group_above=0``);
- the job graph with the jobs of a rule that has more than ``group_above``
  of them drawn as one node, ``extract ×24``, its wildcard values summed up
  (the edges between such nodes are drawn once);
- the rule graph (``rules=True``), one node a rule and an edge where a job of
  one rule needs a job of another, as Snakemake's ``--rulegraph``.

Each node may carry a status (what a ``flow run`` would do now, as the
rebuilder decides it: ``Statuses``), drawn as a colour with a legend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from .job import Job

NEWLINE_DOT = "\\n"  # a line break inside a DOT label
GROUP_ABOVE = 8  # flow dag's default: a rule with more jobs than this is one node
SHOWN_VALUES = 4  # a grouped node lists a wildcard's values up to this many, else counts them

# status -> (legend text, fill, border); in the legend's order
STATUS_STYLE = {
    "run": ("would run", "#ffd8a8", "#e8590c"),
    "some": ("some jobs would run", "#fff3bf", "#f08c00"),
    "ok": ("up to date", "#d3f9d8", "#2b8a3e"),
    "wait": ("waits for a checkpoint", "#e9ecef", "#868e96"),
}


@dataclass
class Statuses:
    """What a dry run decided: the ids of the jobs that would run, and of
    those that wait for a checkpoint's outcome; every other job is up to date."""

    would_run: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)

    def of(self, jobs: list[Job]) -> dict[str, str]:
        """Each job's status. A job without an action (``rule all``) only
        gathers: it would run when something it needs would."""
        status: dict[str, str] = {}
        for job in jobs:  # dependencies before dependants
            if job.id in self.waiting:
                status[job.id] = "wait"
            elif job.id in self.would_run:
                status[job.id] = "run"
            elif job.rule.action is None and any(status.get(d.id) == "run" for d in job.deps):
                status[job.id] = "run"
            else:
                status[job.id] = "ok"
        return status


@dataclass
class Node:
    key: str  # the node's name in the text: j0 (a job), g0 (a rule's jobs), r0 (a rule)
    lines: list[str]  # its label, line by line
    status: str | None = None


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[tuple[str, str]]  # (dependency, dependant), each once
    node_of: dict[str, str] = field(default_factory=dict)  # job id -> the key of the node it is drawn in

    @property
    def statuses(self) -> list[str]:
        """The statuses shown, in the legend's order."""
        shown = {n.status for n in self.nodes}
        return [s for s in STATUS_STYLE if s in shown]


def graph(jobs: list[Job], rules: bool = False, group_above: int = 0,
          statuses: Statuses | None = None) -> Graph:
    """The nodes and edges to draw for ``jobs`` (dependencies before dependants)."""
    status = statuses.of(jobs) if statuses is not None else {}
    by_rule: dict[str, list[Job]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule.name, []).append(job)
    node_of: dict[str, str] = {}  # job id -> node key
    nodes: list[Node] = []
    grouped = {name for name, js in by_rule.items() if rules or (group_above > 0 and len(js) > group_above)}
    group_keys: dict[str, str] = {}
    for job in jobs:
        name = job.rule.name
        if name not in grouped:
            key = f"j{len(nodes)}"
            nodes.append(Node(key, _job_lines(job), status.get(job.id)))
        elif name in group_keys:
            key = group_keys[name]
        else:
            key = group_keys[name] = f"{'r' if rules else 'g'}{len(nodes)}"
            members = by_rule[name]
            lines = [name] if rules else [f"{name} ×{len(members)}", *_values(members)]
            shown = _group_status(members, status) if status else None
            if shown == "some":
                lines.append(f"{sum(status[j.id] == 'run' for j in members)} of {len(members)} would run")
            nodes.append(Node(key, lines, shown))
        node_of[job.id] = key
    edges = list(dict.fromkeys(
        (node_of[dep.id], node_of[job.id]) for job in jobs for dep in job.deps if dep.id in node_of))
    return Graph(nodes, edges, node_of)


def _job_lines(job: Job) -> list[str]:
    """The rule's name, then one line per wildcard."""
    return [job.rule.name, *(f"{k}: {v}" for k, v in job.wildcards.items())]


def _values(jobs: list[Job]) -> list[str]:
    """One line per wildcard of a rule's jobs: its values, or how many there are."""
    values: dict[str, dict[str, None]] = {}
    for job in jobs:
        for k, v in job.wildcards.items():
            values.setdefault(k, {})[v] = None
    return [f"{k}: {', '.join(vs)}" if len(vs) <= SHOWN_VALUES else f"{k}: {len(vs)} values"
            for k, vs in values.items()]


def _group_status(jobs: list[Job], status: dict[str, str]) -> str:
    kinds = {status[j.id] for j in jobs}
    if len(kinds) == 1:
        return kinds.pop()
    return "some" if "run" in kinds else "wait"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mermaid_text(text: str) -> str:
    return "".join({'"': "#quot;", "<": "#lt;", ">": "#gt;", "\n": " "}.get(c, c) for c in text)


def _label(lines: Iterable[str], escape: Callable[[str], str], newline: str) -> str:
    return newline.join(escape(t) for t in lines)


def to_dot(jobs: list[Job], rules: bool = False, group_above: int = 0, statuses: Statuses | None = None) -> str:
    g = graph(jobs, rules, group_above, statuses)
    lines = ["digraph flow {", '    node [shape=box, style=rounded, fontname="sans-serif"];']
    for n in g.nodes:
        lines.append(f'    {n.key} [label="{_label(n.lines, _dot_text, NEWLINE_DOT)}"{_dot_style(n.status)}];')
    lines += [f"    {a} -> {b};" for a, b in g.edges]
    if g.statuses:
        lines += ['    subgraph cluster_legend {', '        label="status"; fontname="sans-serif"; style=dashed;']
        lines += [f'        legend_{s} [label="{STATUS_STYLE[s][0]}"{_dot_style(s)}];' for s in g.statuses]
        lines += [f"        legend_{a} -> legend_{b} [style=invis];" for a, b in pairwise(g.statuses)]
        lines.append("    }")
    return "\n".join([*lines, "}"]) + "\n"


def _dot_style(status: str | None) -> str:
    if status is None:
        return ""
    _, fill, border = STATUS_STYLE[status]
    dashed = ",dashed" if status == "wait" else ""
    return f', style="rounded,filled{dashed}", fillcolor="{fill}", color="{border}"'


def to_mermaid(jobs: list[Job], rules: bool = False, group_above: int = 0,
               statuses: Statuses | None = None) -> str:
    g = graph(jobs, rules, group_above, statuses)
    lines = ["flowchart TD"]
    lines += [f'    {n.key}["{_label(n.lines, _mermaid_text, "<br/>")}"]' for n in g.nodes]
    lines += [f"    {a} --> {b}" for a, b in g.edges]
    if g.statuses:
        lines.append('    subgraph legend["status"]')
        lines += [f'        legend_{s}["{STATUS_STYLE[s][0]}"]' for s in g.statuses]
        lines.append("    end")
        for s in g.statuses:
            _, fill, border = STATUS_STYLE[s]
            dashed = ",stroke-dasharray:4 3" if s == "wait" else ""
            lines.append(f"    classDef {s} fill:{fill},stroke:{border},color:#000{dashed}")
            keys = [n.key for n in g.nodes if n.status == s] + [f"legend_{s}"]
            lines.append(f"    class {','.join(keys)} {s}")
    return "\n".join(lines) + "\n"


def render(dot: bytes, fmt: str) -> bytes:
    """The DOT text drawn as ``fmt`` (svg, png) by Graphviz's ``dot``."""
    import shutil
    import subprocess

    from ..errors import UserError

    exe = shutil.which("dot")
    if exe is None:
        raise UserError(
            f"--format {fmt} needs Graphviz's `dot`, which is not installed",
            "Install Graphviz (`apt-get install graphviz`, `brew install graphviz`, `conda install graphviz`), "
            "or print the graph as text: `flow dag` (DOT) or `flow dag --format mermaid`.")
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot, capture_output=True)
    if proc.returncode != 0:
        raise UserError(f"Graphviz's dot failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout
