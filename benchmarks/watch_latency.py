"""How long from saving a file to the job it affects starting, under
``flow watch``. Writes the block "watch" of docs/benchmarks.md.

    python benchmarks/watch_latency.py                     # 20 saves in a 200-job workflow
    python benchmarks/watch_latency.py --quick --out X.md  # 3 saves: the smoke test

The workflow copies each of N source files (found with glob_wildcards) and
gathers the copies. Each copy job first writes the wall-clock time to its
log, so the job's start is read from the job itself; a save is timed from
the moment the write of the source returned. One ``flow watch`` (default
debounce, 0.2 s) runs throughout; saves are spaced so each build has ended.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WAITING = "flow watch: waiting for changes"

FLOWFILE = '''\
NAMES = glob_wildcards("src/{n}.txt").n

rule all:
    input: "out/all.txt"

rule copy:
    input: "src/{n}.txt"
    output: "out/{n}.txt"
    log: "stamps/{n}.start"
    shell: "date +%s.%N > {log}; cp {input} {output}"

rule gather:
    input: expand("out/{n}.txt", n=NAMES)
    output: "out/all.txt"
    shell: "cat {input} > {output}"
'''


def _wait(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("flow watch did not answer in time")
        time.sleep(0.002)


def measure(work: Path, files: int, saves: int, flow: str, debounce: float) -> list[float]:
    shutil.rmtree(work, ignore_errors=True)
    (work / "src").mkdir(parents=True)
    for i in range(files):
        (work / "src" / f"{i:04d}.txt").write_text(f"{i}\n")
    (work / "Flowfile").write_text(FLOWFILE)
    err = work / "watch.err"
    with open(err, "w") as f:
        proc = subprocess.Popen([flow, "watch", "-q", "--debounce", str(debounce)], cwd=work,
                                stdout=subprocess.DEVNULL, stderr=f, start_new_session=True)
    try:
        _wait(lambda: err.read_text().count(WAITING) >= 1)
        latencies = []
        for k in range(saves):
            name = f"{(k * 7) % files:04d}"
            stamp = work / "stamps" / f"{name}.start"
            before = stamp.read_text() if stamp.exists() else ""
            builds = err.read_text().count(WAITING)
            (work / "src" / f"{name}.txt").write_text(f"save {k}\n")
            saved = time.time()
            _wait(lambda s=stamp, b=before: s.exists() and s.read_text().strip() not in ("", b.strip()))
            latencies.append(float(stamp.read_text()) - saved)
            _wait(lambda b=builds: err.read_text().count(WAITING) > b)
        return latencies
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--saves", type=int, default=20)
    ap.add_argument("--debounce", type=float, default=0.2)
    ap.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    ap.add_argument("--workdir", default=str(REPO / "benchmarks" / ".work" / "watch"))
    ap.add_argument("--flow", default=str(Path(sys.executable).parent / "flow"))
    ap.add_argument("--quick", action="store_true", help="3 saves in a 20-job workflow: a smoke test")
    a = ap.parse_args(argv)
    if a.quick:
        a.files, a.saves = 20, 3
    latencies = measure(Path(a.workdir), a.files, a.saves, a.flow, a.debounce)
    median = statistics.median(latencies)
    body = "\n".join([
        "## Watch mode: from a save to the job starting (issue 7)",
        "",
        report.provenance("watch_latency.py", argv),
        "",
        f"One `flow watch --debounce {a.debounce:g}` on a workflow of {a.files} copy jobs (sources found by "
        f"`glob_wildcards`) and a gather; {a.saves} saves of one source each, timed from the end of the write to "
        "the affected job's first command (which writes the clock to its log).",
        "",
        "| saves | median | min | max | target |",
        "|---|---|---|---|---|",
        f"| {len(latencies)} | {median:.3f} s | {min(latencies):.3f} s | {max(latencies):.3f} s | < 0.5 s |",
        "",
        f"Of the median, {a.debounce:g} s is the debounce (the wait for writes to settle).",
    ])
    report.publish(Path(a.out), "watch", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
