"""Benchmark workflows: one shape, written for every tool.

Each shape is written as a Snakefile that uses only the Flowfile subset (so
the same file runs under ``flow`` and ``snakemake``, a few rules long thanks
to wildcards and ``expand()``), as a ``Makefile`` and as a ``build.ninja``
(one explicit rule per file, as generators such as CMake write them), plus
the source files the workflow reads. Every job is a trivial shell command
(``cat`` of its inputs), or with ``action="run"`` a trivial ``run:`` block.

Shapes (N is about the number of jobs):
- ``chain``: N jobs, each reading the one before (numbers counted up with
  one rule per carry: ``c/0000120.txt`` reads ``c/0000119.txt``);
- ``wide``: N independent jobs and one gather;
- ``layered``: 3 layers of N/3 jobs; a job reads the 3 files of its group
  in the layer before; one gather at the end (the shape of the issue's anchors);
- ``fanin``: a tree that reduces N leaf jobs 10 files at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

SHAPES = ("chain", "wide", "layered", "fanin")
GATHER = "find {dir} -type f | sort | xargs cat > {out}"  # too many inputs for one command line


@dataclass
class Job:
    output: str
    inputs: list[str]
    command: str  # for make and ninja; {in} and {out} are replaced


@dataclass
class Workflow:
    shape: str
    n: int
    snakefile: str
    sources: list[str]
    jobs: list[Job] = field(default_factory=list)
    target: str = ""
    leaf: str = ""  # a source file whose change reruns a few jobs

    @property
    def outputs(self) -> list[str]:
        return [j.output for j in self.jobs]


def build(shape: str, n: int, action: str = "shell") -> Workflow:
    """The workflow of ``shape`` with about ``n`` jobs."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    wf = {"chain": _chain, "wide": _wide, "layered": _layered, "fanin": _fanin}[shape](n)
    if action == "run":
        wf.snakefile = _as_run_blocks(wf.snakefile)
    return wf


def write(wf: Workflow, directory: str) -> None:
    """Write the Snakefile, Makefile, build.ninja and the source files."""
    os.makedirs(directory, exist_ok=True)
    _write(os.path.join(directory, "Snakefile"), wf.snakefile)
    _write(os.path.join(directory, "Makefile"), _makefile(wf))
    _write(os.path.join(directory, "build.ninja"), _ninja(wf))
    for i, path in enumerate(wf.sources):
        _write(os.path.join(directory, path), f"{path} {i}\n")
    for d in sorted({os.path.dirname(j.output) for j in wf.jobs} - {""}):
        os.makedirs(os.path.join(directory, d), exist_ok=True)  # make does not create directories


# shapes ---------------------------------------------------------------------------

CAT = "cat {input} > {output}"


def _chain(n: int) -> Workflow:
    width = 7
    rules = ["rule all:", f'    input: "c/{n:0{width}d}.txt"', ""]
    for k in range(width - 1):
        for d in range(1, 10):
            rules += [
                f"rule step_{d}{'0' * k}:",
                f'    input: "c/{{p}}{d - 1}{"9" * k}.txt"',
                f'    output: "c/{{p}}{d}{"0" * k}.txt"',
                f'    wildcard_constraints: p="[0-9]{{{width - 1 - k}}}"',
                f'    shell: "{CAT}"',
                "",
            ]
    names = [f"c/{i:0{width}d}.txt" for i in range(n + 1)]
    jobs = [Job(names[i], [names[i - 1]], "cat {in} > {out}") for i in range(1, n + 1)]
    return Workflow("chain", n, "\n".join(rules), [names[0]], jobs, names[-1], names[0])


def _wide(n: int) -> Workflow:
    snakefile = f"""\
N = {n}

rule all:
    input: "gather.txt"

rule gather:
    input: expand("w/{{i}}.txt", i=range(N))
    output: "gather.txt"
    shell: "{GATHER.format(dir='w', out='{output}')}"

rule work:
    input: "src/{{i}}.txt"
    output: "w/{{i}}.txt"
    shell: "{CAT}"
"""
    jobs = [Job(f"w/{i}.txt", [f"src/{i}.txt"], "cat {in} > {out}") for i in range(n)]
    jobs.append(Job("gather.txt", [j.output for j in jobs], GATHER.format(dir="w", out="{out}")))
    return Workflow("wide", n, snakefile, [f"src/{i}.txt" for i in range(n)], jobs, "gather.txt", "src/0.txt")


def _layered(n: int, layers: int = 3, group: int = 3) -> Workflow:
    groups = max(1, n // layers // group)
    snakefile = [f"G = {groups}", "", "rule all:", '    input: "gather.txt"', "",
                 "rule gather:",
                 f'    input: expand("l{layers}/{{g}}_{{k}}.txt", g=range(G), k=range({group}))',
                 '    output: "gather.txt"',
                 f'    shell: "{GATHER.format(dir=f"l{layers}", out="{output}")}"', ""]
    for layer in range(1, layers + 1):
        before = '"src/{g}_{k}.txt"' if layer == 1 else \
            f'expand("l{layer - 1}/{{{{g}}}}_{{k}}.txt", k=range({group}))'
        snakefile += [
            f"rule layer{layer}:",
            f"    input: {before}",
            f'    output: "l{layer}/{{g}}_{{k}}.txt"',
            '    wildcard_constraints: g="[0-9]+", k="[0-9]+"',
            f'    shell: "{CAT}"', "",
        ]
    cells = [(g, k) for g in range(groups) for k in range(group)]
    jobs = []
    for layer in range(1, layers + 1):
        for g, k in cells:
            ins = [f"src/{g}_{k}.txt"] if layer == 1 else [f"l{layer - 1}/{g}_{j}.txt" for j in range(group)]
            jobs.append(Job(f"l{layer}/{g}_{k}.txt", ins, "cat {in} > {out}"))
    jobs.append(Job("gather.txt", [f"l{layers}/{g}_{k}.txt" for g, k in cells],
                    GATHER.format(dir=f"l{layers}", out="{out}")))
    return Workflow("layered", n, "\n".join(snakefile), [f"src/{g}_{k}.txt" for g, k in cells],
                    jobs, "gather.txt", "src/0_0.txt")


def _fanin(n: int) -> Workflow:
    depth = max(2, len(str(n)) - 1)  # 10**depth leaves: the largest power of ten up to n
    leaves = [f"{i:0{depth}d}" for i in range(10 ** depth)]
    snakefile = f"""\
rule all:
    input: "total.txt"

rule total:
    input: expand("t/{{c}}.txt", c=range(10))
    output: "total.txt"
    shell: "{CAT}"

rule inner:
    input: expand("t/{{{{p}}}}{{c}}.txt", c=range(10))
    output: "t/{{p}}.txt"
    wildcard_constraints: p="[0-9]{{1,{depth - 1}}}"
    shell: "{CAT}"

rule leaf:
    input: "src/{{p}}.txt"
    output: "t/{{p}}.txt"
    wildcard_constraints: p="[0-9]{{{depth}}}"
    shell: "{CAT}"
"""
    jobs = [Job(f"t/{p}.txt", [f"src/{p}.txt"], "cat {in} > {out}") for p in leaves]
    for level in range(depth - 1, 0, -1):
        for i in range(10 ** level):
            p = f"{i:0{level}d}"
            jobs.append(Job(f"t/{p}.txt", [f"t/{p}{c}.txt" for c in range(10)], "cat {in} > {out}"))
    jobs.append(Job("total.txt", [f"t/{c}.txt" for c in range(10)], "cat {in} > {out}"))
    return Workflow("fanin", n, snakefile, [f"src/{p}.txt" for p in leaves], jobs, "total.txt",
                    f"src/{leaves[0]}.txt")


def _as_run_blocks(snakefile: str) -> str:
    """The same workflow with every ``cat`` job as a ``run:`` block (Python in a worker)."""
    body = ("    run:\n"
            "        with open(output[0], \"w\") as out:\n"
            "            for path in input:\n"
            "                with open(path) as f:\n"
            "                    out.write(f.read())\n")
    return snakefile.replace(f'    shell: "{CAT}"\n', body)


# make and ninja -------------------------------------------------------------------

def _makefile(wf: Workflow) -> str:
    lines = [".SUFFIXES:", "MAKEFLAGS += --no-builtin-rules", f"all: {wf.target}", ".PHONY: all", ""]
    for job in wf.jobs:
        lines.append(f"{job.output}: {' '.join(job.inputs)}")
        lines.append("\t" + job.command.format(**{"in": "$^", "out": "$@"}))
    return "\n".join(lines) + "\n"


def _ninja(wf: Workflow) -> str:
    lines = ["rule cat", "  command = cat $in > $out", ""]
    commands = {}
    for job in wf.jobs:
        if job.command.startswith("cat "):
            name = "cat"
        else:
            name = commands.setdefault(job.command, f"cmd{len(commands)}")
        lines.append(f"build {job.output}: {name} {' '.join(job.inputs)}")
    for command, name in commands.items():
        lines[3:3] = [f"rule {name}", "  command = " + command.format(**{"in": "$in", "out": "$out"}), ""]
    lines.append(f"default {wf.target}")
    return "\n".join(lines) + "\n"


def _write(path: str, text: str) -> None:
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def iter_shapes() -> Iterator[str]:
    yield from SHAPES
