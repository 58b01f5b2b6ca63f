"""The job graph as text: Graphviz DOT and Mermaid."""

from __future__ import annotations

from .dag import Job


def _lines(job: Job) -> list[str]:
    return [job.rule.name, *(f"{k}: {v}" for k, v in job.wildcards.items())]


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mermaid_text(text: str) -> str:
    return "".join({'"': "#quot;", "<": "#lt;", ">": "#gt;", "\n": " "}.get(c, c) for c in text)


def _index(jobs: list[Job]) -> dict[str, int]:
    return {j.id: i for i, j in enumerate(jobs)}


def to_dot(jobs: list[Job]) -> str:
    ids = _index(jobs)
    lines = ["digraph flow {", '    node [shape=box, style=rounded, fontname="sans-serif"];']
    for job in jobs:
        label = "\\n".join(_dot_text(t) for t in _lines(job))
        lines.append(f'    j{ids[job.id]} [label="{label}"];')
    for job in jobs:
        for dep in job.deps:
            if dep.id in ids:
                lines.append(f"    j{ids[dep.id]} -> j{ids[job.id]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(jobs: list[Job]) -> str:
    ids = _index(jobs)
    lines = ["flowchart TD"]
    for job in jobs:
        label = "<br/>".join(_mermaid_text(t) for t in _lines(job))
        lines.append(f'    j{ids[job.id]}["{label}"]')
    for job in jobs:
        for dep in job.deps:
            if dep.id in ids:
                lines.append(f"    j{ids[dep.id]} --> j{ids[job.id]}")
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
