"""The job graph as text: Graphviz DOT and Mermaid."""

from __future__ import annotations

from .dag import Job


def _label(job: Job) -> str:
    if not job.wildcards:
        return job.rule.name
    return job.rule.name + "\\n" + "\\n".join(f"{k}: {v}" for k, v in job.wildcards.items())


def _index(jobs: list[Job]) -> dict[str, int]:
    return {j.id: i for i, j in enumerate(jobs)}


def to_dot(jobs: list[Job]) -> str:
    ids = _index(jobs)
    lines = ["digraph flow {", '    node [shape=box, style=rounded, fontname="sans-serif"];']
    for job in jobs:
        label = _label(job).replace('"', '\\"')
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
        label = _label(job).replace("\\n", "<br/>").replace('"', "#quot;")
        lines.append(f'    j{ids[job.id]}["{label}"]')
    for job in jobs:
        for dep in job.deps:
            if dep.id in ids:
                lines.append(f"    j{ids[dep.id]} --> j{ids[job.id]}")
    return "\n".join(lines) + "\n"
