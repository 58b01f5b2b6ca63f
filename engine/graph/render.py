"""The job graph as text: Graphviz DOT and Mermaid."""

from __future__ import annotations

from collections.abc import Callable

from .job import Job

NEWLINE_DOT = "\\n"  # a line break inside a DOT label


def _label(job: Job, escape: Callable[[str], str], newline: str) -> str:
    """The rule's name, then one line per wildcard."""
    lines = [job.rule.name, *(f"{k}: {v}" for k, v in job.wildcards.items())]
    return newline.join(escape(t) for t in lines)


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mermaid_text(text: str) -> str:
    return "".join({'"': "#quot;", "<": "#lt;", ">": "#gt;", "\n": " "}.get(c, c) for c in text)


def _edges(jobs: list[Job]) -> tuple[dict[str, int], list[tuple[int, int]]]:
    """Each job's node number, and the (dependency, dependant) pairs among them."""
    ids = {j.id: i for i, j in enumerate(jobs)}
    return ids, [(ids[dep.id], ids[job.id]) for job in jobs for dep in job.deps if dep.id in ids]


def to_dot(jobs: list[Job]) -> str:
    ids, edges = _edges(jobs)
    lines = ["digraph flow {", '    node [shape=box, style=rounded, fontname="sans-serif"];']
    lines += [f'    j{ids[job.id]} [label="{_label(job, _dot_text, NEWLINE_DOT)}"];' for job in jobs]
    lines += [f"    j{a} -> j{b};" for a, b in edges]
    return "\n".join([*lines, "}"]) + "\n"


def to_mermaid(jobs: list[Job]) -> str:
    ids, edges = _edges(jobs)
    lines = ["flowchart TD"]
    lines += [f'    j{ids[job.id]}["{_label(job, _mermaid_text, "<br/>")}"]' for job in jobs]
    lines += [f"    j{a} --> j{b}" for a, b in edges]
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
