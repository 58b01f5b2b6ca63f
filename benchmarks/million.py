"""A million jobs: flow's dry run and no-op at 1,000,000 jobs (layered), beside make.

    python benchmarks/million.py                              # about 20 minutes
    python benchmarks/million.py --jobs 100000 --out X.md     # a smaller check
    python benchmarks/million.py --quick --out X.md           # 300 jobs, once: the smoke test

A full build of a million trivial jobs takes flow and make most of an hour
each (300-900 jobs/s, the tables above), so the outputs are made here as the
jobs would make them (each the concatenation of its inputs, written in
build order, so that make's timestamps are in order too) and flow records
them with ``flow run --touch``: what a build leaves in ``.flow/``, each
output with its hash and its job's key. Measured, with peak memory (GNU
time): flow's dry run from clean (inferring the graph, hashing every source,
deciding every job, nothing kept from before), its first no-op run (with
the graph and keys the recording run kept in ``.flow/``; a run with
``--touch`` leaves no stamp, so this one decides every job and leaves it),
the no-op runs after it (the stamp proves them), one without anything
kept, and make's no-op run on the same files. Writes its table to docs/benchmarks.md (the
block "million").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
import workflows  # noqa: E402
from run import Timing, timed  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def make_outputs(wf: workflows.Workflow, root: Path) -> None:
    """Every output, as its job would write it, in build order."""
    contents = {path: (root / path).read_bytes() for path in wf.sources}
    for job in wf.jobs:
        inputs = sorted(job.inputs) if job.output == wf.target else job.inputs  # (the gather sorts)
        data = b"".join(contents[p] for p in inputs)
        (root / job.output).write_bytes(data)
        if job.output != wf.target:
            contents[job.output] = data


def nothing_to_do(flow: str, root: Path) -> bool:
    """Whether flow finds every job up to date (what a no-op must measure)."""
    r = subprocess.run([flow, "run", "-n", "-q"], cwd=root, capture_output=True, text=True)
    return r.returncode == 0 and "would run 0 jobs" in r.stderr


def cell(timings: list[Timing]) -> str:
    if any(t.failed or t.over for t in timings):
        bad = next(t for t in timings if t.failed or t.over)
        return "> limit" if bad.over else f"failed: {bad.failed.strip().splitlines()[-1]}"
    seconds = statistics.median(t.seconds for t in timings)
    peak = max(t.peak_mb for t in timings)
    return f"{seconds:.2f} s, {peak:,.0f} MB"


def measure(n: int, repeat: int, work: Path, flow: str, limit: float) -> list[str]:
    root = work / f"layered-{n}"
    shutil.rmtree(root, ignore_errors=True)
    wf = workflows.build("layered", n)
    print(f"writing {len(wf.jobs):,} jobs' workflow ...", file=sys.stderr)
    workflows.write(wf, str(root))
    os.unlink(root / "build.ninja")
    rows: list[tuple[str, str]] = []
    flow_run = [flow, "run", "-q", "-j", "2"]
    print("flow dry run from clean ...", file=sys.stderr)
    rows.append(("flow: dry run from clean (`flow run -n -q`)",
                 cell([timed([flow, "run", "-n", "-q"], root, limit) for _ in range(repeat)])))
    print("making the outputs ...", file=sys.stderr)
    make_outputs(wf, root)
    print("flow run --touch ...", file=sys.stderr)
    rows.append(("flow: recording the outputs (`flow run --touch`), once", cell([timed([*flow_run, "--touch"], root, limit)])))
    print("no-op runs ...", file=sys.stderr)
    if not nothing_to_do(flow, root):
        raise SystemExit("million.py: flow would still run jobs after --touch; the no-op would measure a build")
    rows.append(("flow: first no-op (decides every job with the graph and keys that run kept; leaves the stamp)",
                 cell([timed(flow_run, root, limit)])))
    rows.append(("flow: no-op (the stamp proves it: a `stat` per file)",
                 cell([timed(flow_run, root, limit) for _ in range(repeat)])))
    rows.append(("flow: no-op with `--no-graph-cache`",
                 cell([timed([*flow_run, "--no-graph-cache"], root, limit) for _ in range(repeat)])))
    rows.append(("make: no-op (`make -s -j 2`)", cell([timed(["make", "-s", "-j", "2"], root, limit)
                                                       for _ in range(repeat)])))
    return ["| measurement | median time, peak memory |", "|---|---|", *[f"| {what} | {value} |" for what, value in rows]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=1_000_000, help="about this many jobs")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (the report gives medians)")
    p.add_argument("--limit", type=float, default=1800.0, help="seconds before a command is stopped")
    p.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    p.add_argument("--workdir", default=str(REPO / "benchmarks" / ".work" / "million"))
    p.add_argument("--flow", default=str(Path(sys.executable).parent / "flow"))
    p.add_argument("--quick", action="store_true", help="300 jobs, one run: a smoke test")
    a = p.parse_args(argv)
    if a.quick:
        a.jobs, a.repeat = 300, 1
    report.compile_flow()
    table = measure(a.jobs, a.repeat, Path(a.workdir), a.flow, a.limit)
    body = "\n".join([
        f"## layered, {a.jobs:,} jobs: dry run and no-op",
        "",
        report.provenance("million.py", argv),
        "",
        "The outputs are made by the script and recorded with `flow run --touch` instead of a full build "
        "(`benchmarks/million.py` says why). Times are medians; memory is the peak of the runs.",
        "",
        *table,
    ])
    report.publish(Path(a.out), "million", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
