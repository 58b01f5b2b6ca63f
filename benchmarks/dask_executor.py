"""The Dask executor's cost per job against the local process pool.

    python benchmarks/dask_executor.py [--jobs 1000] [--repeat 5] [--cores 2]

Builds a workflow of JOBS independent trivial jobs (each writes one small
file: a shell command, or a ``run:`` block with ``--kind run``) from clean,
with ``flow run -j CORES`` on the local pool and with ``--executor dask``
(the local cluster flow starts: two workers sharing CORES threads), the two
taking turns in each repeat so that the machine's drift falls on both. A
one-job build with each executor is measured too, to take the start-up (the
cluster's included) out of the per-job figure. Prints medians and the
per-job overhead as a Markdown table, for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXECUTORS = {"local pool": [], "dask (LocalCluster)": ["--executor", "dask"]}


def flowfile(jobs: int, kind: str) -> str:
    action = ('shell: "echo {wildcards.i} > {output}"' if kind == "shell" else
              'run:\n        open(output[0], "w").write(wildcards.i)')
    return (f"rule all:\n    input: expand(\"out/{{i}}.txt\", i=range({jobs}))\n\n"
            f"rule make:\n    output: \"out/{{i}}.txt\"\n    {action}\n")


def build(flow: str, root: Path, args: list[str], cores: int) -> float:
    """Seconds of one build from clean."""
    for name in (".flow", "out"):
        shutil.rmtree(root / name, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([flow, "run", "-q", "-j", str(cores), *args], cwd=root, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--kind", choices=["shell", "run"], default="shell")
    p.add_argument("--flow", default=str(Path(sys.executable).parent / "flow"))
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        roots = {}
        for n in (1, a.jobs):
            roots[n] = Path(tmp) / str(n)
            roots[n].mkdir()
            (roots[n] / "Flowfile").write_text(flowfile(n, a.kind))
        times: dict[tuple[str, int], list[float]] = {}
        for _ in range(a.repeat):
            for n in (1, a.jobs):
                for name, args in EXECUTORS.items():
                    times.setdefault((name, n), []).append(build(a.flow, roots[n], args, a.cores))
    print(f"{a.jobs} trivial `{a.kind}` jobs from clean, -j {a.cores}, medians of {a.repeat} "
          "(the executors taking turns):\n")
    print(f"| executor | 1 job, s | {a.jobs:,} jobs, s | jobs/s | per job beyond start-up, ms |")
    print("|---|---|---|---|---|")
    for name in EXECUTORS:
        one, many = statistics.median(times[(name, 1)]), statistics.median(times[(name, a.jobs)])
        per_job = (many - one) / (a.jobs - 1) * 1000
        print(f"| {name} | {one:.2f} | {many:.2f} | {a.jobs / many:,.0f} | {per_job:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
