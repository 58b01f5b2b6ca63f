"""Measure flow side by side with Snakemake, make and ninja; write docs/benchmarks.md.

    python benchmarks/run.py                      # the full comparison (about 40 minutes)
    python benchmarks/run.py --quick --out X.md   # flow only, 1,000 jobs: the smoke test
    python benchmarks/run.py --baseline OTHER/bin/flow --tools flow,flow-before   # before/after a change

For each shape and size, every tool works in its own copy of the same
workflow (``workflows.py``), and the tools take turns within each repeat, so
that the machine's noise falls on all of them alike. Measured per tool:
(a) full build from clean with 2 cores, (b) no-op run and its peak memory,
(c) one leaf input's content changed, (d) the same leaf touched without a
change, and the jobs each reran, (e) dry run from clean. A tool that exceeds
``--limit`` seconds plus ``--limit-per-job`` milliseconds per job on a
measurement is stopped, reported as "> limit", and not asked again at that
size or larger ones of the shape; when the full build of a tool that decides
by timestamps is over the limit, the outputs another tool built (same
commands, same bytes) are copied in, in build order, so that its other
measurements are still real. ``--baseline`` adds a second flow build (say,
from a worktree of the commit before a change) as one more tool, run as flow
is: its ratio to flow shows what the change cost.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
import workflows  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("flow", "snakemake", "make", "ninja")
STATE = {"flow": [".flow"], "snakemake": [".snakemake"], "make": [], "ninja": [".ninja_log", ".ninja_deps"]}


# running a command -------------------------------------------------------------------

@dataclass
class Timing:
    seconds: float
    peak_mb: float
    over: bool = False  # stopped at the limit
    failed: str = ""


GNU_TIME = "/usr/bin/time"


def timed(argv: list[str], cwd: Path, limit: float) -> Timing:
    """Run ``argv`` to the end (or the limit); wall time and peak memory of
    the process tree. A child's peak memory starts at its parent's (Linux
    counts the memory left at exec), so the peak is taken by GNU time, a
    small parent, where it is installed; else by ``wait4`` from here, an upper
    bound."""
    peak_file = cwd / ".peak-kb"
    measured = os.path.exists(GNU_TIME)
    if measured:
        argv = [GNU_TIME, "-f", "%M", "-o", str(peak_file), *argv]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    timer = threading.Timer(limit, lambda: _kill(proc.pid))
    timer.start()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if seconds >= limit:
        return Timing(seconds, 0, over=True)
    failed = "" if proc.returncode == 0 else err.decode(errors="replace")[-2000:] or f"exit {proc.returncode}"
    peak_kb = usage.ru_maxrss
    if measured:
        try:
            peak_kb = int(peak_file.read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            pass
        peak_file.unlink(missing_ok=True)
    return Timing(seconds, peak_kb / 1024, failed=failed)


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# the tools ---------------------------------------------------------------------------

@dataclass
class Tool:
    name: str
    build: list[str]
    noop: list[str]
    dry: list[str]
    kind: str = ""  # the tool it is, where the name says which build of it (a baseline: "flow")

    def __post_init__(self) -> None:
        self.kind = self.kind or self.name


def flow_tool(name: str, flow: str) -> Tool:
    return Tool(name, [flow, "run", "-q", "-j", "2"], [flow, "run", "-q", "-j", "2"], [flow, "run", "-n", "-q"],
                kind="flow")


def tools(flow: str, snakemake: str | None, wanted: list[str], baseline: tuple[str, str] | None = None
          ) -> dict[str, Tool]:
    """The tools wanted that are found; ``baseline``, (name, executable), is
    one more flow, run as flow is."""
    found = {
        "flow": flow_tool("flow", flow),
        "snakemake": snakemake and Tool("snakemake", [snakemake, "-j", "2", "-q"], [snakemake, "-j", "2", "-q"],
                                        [snakemake, "-n", "-q"]),
        "make": shutil.which("make") and Tool("make", ["make", "-j", "2", "-s"], ["make", "-j", "2", "-s"],
                                              ["make", "-n"]),
        "ninja": shutil.which("ninja") and Tool("ninja", ["ninja", "-j", "2"], ["ninja", "-j", "2"], ["ninja", "-n"]),
    }
    if baseline:
        found[baseline[0]] = flow_tool(*baseline)
    missing = [t for t in wanted if not found.get(t)]
    if missing:
        print(f"not found, left out: {', '.join(missing)}", file=sys.stderr)
    return {t: found[t] for t in wanted if found.get(t)}


def install_snakemake(venv: Path) -> str:
    """Snakemake in a virtualenv of its own (it is only compared, never imported)."""
    exe = venv / "bin" / "snakemake"
    if not exe.exists():
        print(f"installing Snakemake into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "snakemake"], check=True)
    return str(exe)


def version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.splitlines()[0] if out else "?"


# one workflow, every tool -----------------------------------------------------------

@dataclass
class Results:
    """Per measurement and tool: the values of every repeat (None: over the limit)."""

    values: dict[tuple[str, str], list[float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, tool: str, value: float | None) -> None:
        self.values.setdefault((what, tool), []).append(value)

    def median(self, what: str, tool: str) -> float | None:
        vals = self.values.get((what, tool))
        if not vals or any(v is None for v in vals):
            return None
        if any(math.isnan(v) for v in vals):
            return math.nan
        return statistics.median(vals)

    def has(self, what: str, tool: str) -> bool:
        return (what, tool) in self.values


class Bench:
    def __init__(self, wf: workflows.Workflow, root: Path, tools: dict[str, Tool], limit: float):
        self.wf, self.root, self.tools, self.limit = wf, root, tools, limit
        self.results = Results()
        self.over: set[tuple[str, str]] = set()  # (tool, measurement) past the limit
        for name in tools:
            if not (root / name / "Snakefile").exists():
                workflows.write(wf, str(root / name))

    def dir(self, tool: str) -> Path:
        return self.root / tool

    def clean(self, tool: str) -> None:
        d = self.dir(tool)
        for out in self.wf.outputs:
            try:
                os.unlink(d / out)
            except FileNotFoundError:
                pass
        for name in STATE[self.tools[tool].kind]:
            p = d / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def run(self, what: str, tool: str, argv: list[str]) -> Timing | None:
        if (tool, what) in self.over:
            return None
        t = timed(argv, self.dir(tool), self.limit)
        if t.failed:  # reported, and not asked again: one tool's failure must not cost the whole run
            self.results.notes.append(f"{tool} FAILED ({what}): `{' '.join(_short(argv))}`: "
                                      + t.failed.strip().replace("\n", " ")[-300:])
            print(self.results.notes[-1], file=sys.stderr)
        if t.over or t.failed:
            self.over.add((tool, what))
            self.results.add(what, tool, None if t.over else math.nan)
            return None
        return t

    def repeat(self) -> None:
        """One round: every measurement, each tool in turn."""
        for name, tool in self.tools.items():
            self.clean(name)
            t = self.run("dry run from clean, s", name, tool.dry)
            if t:
                self.results.add("dry run from clean, s", name, t.seconds)
        unbuilt = []
        for name, tool in self.tools.items():
            t = self.run("full build, s", name, tool.build)
            if t:
                self.results.add("full build, s", name, t.seconds)
            else:
                unbuilt.append(name)
        for name in unbuilt:  # (after every build: a donor later in the turn has built by now)
            self._borrow_outputs(name)
        for name, tool in self.tools.items():
            t = self.run("no-op, s", name, tool.noop)
            if t:
                self.results.add("no-op, s", name, t.seconds)
                self.results.add("no-op peak memory, MB", name, t.peak_mb)
        self._leaf("changed leaf", lambda p: _append(p, "changed\n"))
        self._leaf("touched leaf", lambda p: os.utime(p))

    def _leaf(self, what: str, change: Callable[[Path], None]) -> None:
        for name, tool in self.tools.items():
            d = self.dir(name)
            before = _mtimes(d, self.wf.outputs)
            change(d / self.wf.leaf)
            t = self.run(f"{what}, s", name, tool.noop)
            if t:
                self.results.add(f"{what}, s", name, t.seconds)
                after = _mtimes(d, self.wf.outputs)
                self.results.add(f"{what}, jobs rerun", name, sum(before[p] != after[p] for p in before))

    def _borrow_outputs(self, tool: str) -> None:
        """Give a tool whose build was over the limit the outputs another built."""
        donor = next((n for n in self.tools if n != tool and (n, "full build, s") not in self.over), None)
        if donor is None or self.tools[tool].kind == "flow":  # (flow trusts only outputs it recorded itself)
            return
        self.clean(tool)
        for job in self.wf.jobs:  # in build order, so each output is newer than its inputs
            src, dst = self.dir(donor) / job.output, self.dir(tool) / job.output
            if src.exists():
                shutil.copy2(src, dst)
                os.utime(dst)
        note = (f"{tool}'s full build was over the limit or failed; its other measurements use the outputs "
                f"{donor} built.")
        if note not in self.results.notes:
            self.results.notes.append(note)


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def _mtimes(root: Path, paths: list[str]) -> dict[str, int]:
    out = {}
    for p in paths:
        try:
            out[p] = os.stat(root / p).st_mtime_ns
        except FileNotFoundError:
            out[p] = -1
    return out


# flow-only rows and the limits of the machine ------------------------------------------

def flow_run_jobs(flow: str, shape: str, n: int, root: Path, limit: float, repeat: int) -> float | None:
    """Jobs per second of the same workflow with trivial ``run:`` jobs (flow's worker pool)."""
    wf = workflows.build(shape, n, action="run")
    d = root / "flow-run"
    if d.exists():
        shutil.rmtree(d)
    workflows.write(wf, str(d))
    rates = []
    for _ in range(repeat):
        for out in wf.outputs:
            (d / out).unlink(missing_ok=True)
        shutil.rmtree(d / ".flow", ignore_errors=True)
        t = timed([flow, "run", "-q", "-j", "2"], d, limit)
        if t.over or t.failed:
            return None
        rates.append(len(wf.jobs) / t.seconds)
    return statistics.median(rates)


def stat_all(root: Path, wf: workflows.Workflow) -> float:
    """``os.stat`` of every file of the workflow from Python: what any no-op must at least do."""
    paths = [str(root / p) for p in wf.sources + wf.outputs]
    started = time.perf_counter()
    for p in paths:
        os.stat(p)
    return time.perf_counter() - started


def spawn_limit(n: int, argv: list[str]) -> float:
    """Jobs per second when ``argv`` is started ``n`` times, 2 at a time, by nothing else."""
    def lane(count: int) -> None:
        for _ in range(count):
            subprocess.run(argv, stdin=subprocess.DEVNULL, check=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lane, [n // 2, n - n // 2]))
    return n / (time.perf_counter() - started)


def startup(flows: dict[str, str], root: Path) -> dict[str, float]:
    """Median of 10 starts of each flow (name: executable), each in its own
    directory; the flows take turns, as in the tables."""
    dirs = {name: _tiny(root / "tiny" / name) for name in flows}
    runs: dict[str, list[float]] = {}
    for _ in range(10):
        for label, args in (("--version", ["--version"]), ("run -n, 3 jobs", ["run", "-n", "-q"])):
            for name, flow in flows.items():
                runs.setdefault(f"{name} {label}", []).append(timed([flow, *args], dirs[name], 60).seconds)
    return {label: statistics.median(seconds) for label, seconds in runs.items()}


def _tiny(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "a.txt").write_text("a\n")
    (d / "Flowfile").write_text('rule all:\n    input: "c.txt"\n\nrule b:\n    input: "a.txt"\n'
                                '    output: "b.txt"\n    shell: "cp {input} {output}"\n\n'
                                'rule c:\n    input: "b.txt"\n    output: "c.txt"\n    shell: "cp {input} {output}"\n')
    return d


# the report ------------------------------------------------------------------------------

ROWS = ["full build, s", "full build, jobs/s", "no-op, s", "no-op peak memory, MB", "changed leaf, s",
        "changed leaf, jobs rerun", "touched leaf, s", "touched leaf, jobs rerun", "dry run from clean, s"]


def table(bench: Bench, limit: float) -> list[str]:
    names = list(bench.tools)
    r = bench.results
    lines = ["| measurement | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    jobs = len(bench.wf.jobs)
    for row in ROWS:
        cells = []
        for name in names:
            cells.append(_cell(r, row, name, jobs, limit))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def _cell(r: Results, row: str, tool: str, jobs: int, limit: float) -> str:
    source = "full build, s" if row == "full build, jobs/s" else row
    if not r.has(source, tool):
        return "-"
    value = r.median(source, tool)
    if value is None:
        return f"> {limit:g} s"
    if math.isnan(value):
        return "failed"
    if row == "full build, jobs/s":
        value = jobs / value
    flow = r.median(source, "flow")
    if row == "full build, jobs/s" and flow is not None:
        flow = jobs / flow
    text = f"{value:.0f}" if "jobs" in row or "MB" in row else f"{value:.2f}"
    if tool == "flow" or flow in (None, 0) or "rerun" in row or value == 0:
        return text
    ratio = flow / value if row == "full build, jobs/s" else value / flow
    return f"{text} ({ratio:.2g}x)"


def machine() -> str:
    cpu = "?"
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "?"
    mem = "?"
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {mem} RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def write_report(path: Path, sections: list[str], header: list[str]) -> str:
    """The report: header, the notes written by hand, these sections, then the
    sections other runners wrote (kept as they are)."""
    kept = report.blocks(path.read_text() if path.exists() else "")
    notes = kept.pop("notes", report.wrap("notes", "(analysis of the numbers: written by hand)"))
    text = "\n".join(header) + "\n\n" + notes + "\n\n" + "\n".join(sections) + "\n"
    text += "".join(f"\n{block}\n" for block in kept.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


# main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="numbers of jobs, comma-separated")
    p.add_argument("--shapes", default="layered,chain:10000,wide:10000,fanin:10000",
                   help=f"comma-separated, of {', '.join(workflows.SHAPES)}; "
                        "shape:N/N/... gives a shape its own sizes")
    p.add_argument("--tools", help=f"comma-separated, of {', '.join(TOOLS)} and the baseline's name "
                                   "(default: all; with --quick, flow and the baseline)")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (the report gives medians)")
    p.add_argument("--repeat-large", type=int, default=1, help="runs per measurement at 100,000 jobs or more")
    p.add_argument("--limit", type=float, default=60.0, help="seconds before a tool is stopped ...")
    p.add_argument("--limit-per-job", type=float, default=4.0, help="... plus these milliseconds per job")
    p.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    p.add_argument("--workdir", default=str(REPO / "benchmarks" / ".work"))
    p.add_argument("--snakemake", help="a snakemake executable (default: installed into benchmarks/.venv-snakemake)")
    p.add_argument("--flow", default=str(Path(sys.executable).parent / "flow"))
    p.add_argument("--baseline", metavar="FLOW_EXE",
                   help="a second flow build (say, of the commit before a change), measured as one more tool")
    p.add_argument("--baseline-name", default="flow-before", help="its name in the tables and in --tools")
    p.add_argument("--quick", action="store_true", help="flow (and the baseline) only, 1,000 jobs, one run: a smoke test")
    a = p.parse_args(argv)
    if a.baseline_name in (*TOOLS, "flow-run", "tiny"):  # (the names of tools and of work directories)
        p.error(f"--baseline-name {a.baseline_name} is taken")
    if a.baseline:  # (the tools run in their own directories: a relative path would not be found there)
        found = shutil.which(a.baseline)
        if not found:
            p.error(f"--baseline {a.baseline}: no such executable")
        a.baseline = os.path.abspath(found)
    if a.quick:
        a.sizes, a.shapes, a.repeat = "1000", "layered", 1
    wanted = a.tools.split(",") if a.tools else default_tools(a)
    report.compile_flow()
    if a.baseline and a.baseline_name in wanted:
        report.compile_flow(interpreter(a.baseline))
    snakemake = None
    if "snakemake" in wanted:
        snakemake = a.snakemake or install_snakemake(REPO / "benchmarks" / ".venv-snakemake")
    available = tools(a.flow, snakemake, wanted, a.baseline and (a.baseline_name, a.baseline))
    work = Path(a.workdir)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = [
        "# Benchmarks",
        "",
        f"Measured {started} on {machine()}.",
        "",
        "Reproduce: `" + " ".join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]) + "`",
        "",
        "Versions: " + "; ".join(f"{name} {version(v)}" for name, v in (
            ("flow", [a.flow, "--version"]), (a.baseline_name, [a.baseline or "?", "--version"]),
            ("snakemake", [snakemake or "snakemake", "--version"]),
            ("make", ["make", "--version"]), ("ninja", ["ninja", "--version"])) if name in available),
        "",
        "Commands, each in its own copy of the workflow (`benchmarks/workflows.py` writes the Snakefile both flow "
        "and Snakemake run, a Makefile and a build.ninja):",
        "",
        *[f"- {t.name}: build and no-op `{' '.join(_short(t.build))}`, dry run `{' '.join(_short(t.dry))}`"
          for t in available.values()],
        "",
        "Medians of the runs; in parentheses the other tool's time divided by flow's (above 1: flow is faster; "
        "for jobs/s, flow's rate divided by the other's). flow and Snakemake run each job with "
        "`bash -euo pipefail -c`, make and ninja with `/bin/sh -c`. A tool is stopped after "
        f"{a.limit:g} s plus {a.limit_per_job:g} ms per job on one measurement (\"> limit\").",
    ]
    if a.baseline_name in available:
        header += ["", f"Two flow builds are compared. In {a.baseline_name}'s column the ratio is to flow as for the "
                   "other tools: above 1 where flow is the faster or smaller (what the change gained), below 1 "
                   "where it is the slower or larger (what the change cost).", "",
                   *[describe(name, t.build[0]) for name, t in available.items() if t.kind == "flow"]]
    sections: list[str] = []
    for spec in a.shapes.split(","):
        shape, _, sizes = spec.partition(":")
        skipped: set[str] = set()  # over the limit at a smaller size of this shape
        for n in sorted(int(s) for s in (sizes or a.sizes).split("/" if sizes else ",")):
            print(f"{shape}, {n} jobs ...", file=sys.stderr)
            here = {k: v for k, v in available.items() if k not in skipped}
            limit = a.limit + a.limit_per_job * n / 1000
            bench = Bench(workflows.build(shape, n), work / f"{shape}-{n}", here, limit)
            for _ in range(a.repeat if n < 100_000 else a.repeat_large):
                bench.repeat()
            section = [f"## {shape}, {len(bench.wf.jobs):,} jobs", "", *table(bench, limit), ""]
            section += [f"- {note}" for note in bench.results.notes]
            section += [f"- {t}: not run at this size (over the limit at a smaller one)." for t in sorted(skipped)]
            section += [*_limits(a, bench, shape, n), ""]
            skipped |= {tool for tool, _ in bench.over}
            sections += section
            print("\n".join(section), file=sys.stderr)
    flows = {name: t.build[0] for name, t in available.items() if t.kind == "flow"}
    if flows:
        sections += ["## Start-up", "", "| command | median of 10, s |", "|---|---|"]
        sections += [f"| `{k}` | {v:.3f} |" for k, v in startup(flows, work).items()]
    text = write_report(Path(a.out), sections, header)
    print(text)
    return 0


def default_tools(a: argparse.Namespace) -> list[str]:
    """Every tool (flow alone with --quick), the baseline next to flow."""
    rest = [] if a.quick else list(TOOLS[1:])
    return ["flow", *([a.baseline_name] if a.baseline else []), *rest]


def interpreter(exe: str) -> str:
    """The Python a console script runs under (its #! line; "" if it is no
    Python script): the baseline's sources are found and byte-compiled by it."""
    try:
        with open(exe, "rb") as f:
            words = f.readline().decode(errors="replace").removeprefix("#!").split()
    except OSError:
        return ""
    return words[0] if words and os.path.basename(words[0]).startswith("python") else ""


def describe(name: str, exe: str) -> str:
    """Which flow a column is: its executable, and the commit of its sources
    ("-dirty": with changes not committed), so that before and after say what they are."""
    dirs = report.source_dirs(interpreter(exe))
    if not dirs:
        return f"- {name}: `{exe}` (its sources not found)"
    commit = version(["git", "-C", dirs[0], "describe", "--always", "--dirty"])
    return f"- {name}: `{exe}`, sources in `{os.path.dirname(dirs[0])}` at {commit}"


def _limits(a: argparse.Namespace, bench: Bench, shape: str, n: int) -> list[str]:
    """The machine's limits for this workflow, and flow against them."""
    lines = []
    flow_dir = bench.dir("flow") if "flow" in bench.tools else None
    jobs = len(bench.wf.jobs)
    if flow_dir is not None:
        rate = flow_run_jobs(a.flow, shape, n, bench.root, bench.limit, a.repeat if n < 100_000 else a.repeat_large)
        if rate:
            lines.append(f"- flow with trivial `run:` jobs (Python, in its worker pool) instead of shell jobs: "
                         f"{rate:.0f} jobs/s.")
        seconds = stat_all(flow_dir, bench.wf)
        noop = bench.results.median("no-op, s", "flow")
        lines.append(f"- `os.stat` of all {len(bench.wf.sources) + len(bench.wf.outputs):,} files from Python: "
                     f"{seconds:.3f} s" + (f"; flow's no-op is {noop / seconds:.0f}x that." if noop else "."))
    true_rate = spawn_limit(jobs, ["/bin/true"])
    bash_rate = spawn_limit(jobs, ["bash", "-euo", "pipefail", "-c", "true"])
    build = bench.results.median("full build, s", "flow")
    lines.append(f"- Starting `/bin/true` {jobs:,} times, 2 at a time, from Python: {true_rate:.0f} per second; "
                 f"`bash -euo pipefail -c true`: {bash_rate:.0f} per second"
                 + (f" (flow's full build: {jobs / build:.0f} jobs/s, {jobs / build / bash_rate:.2f}x the bash limit)."
                    if build else "."))
    return lines


def _short(argv: list[str]) -> list[str]:
    return [os.path.basename(argv[0]), *argv[1:]]


if __name__ == "__main__":
    sys.exit(main())
