"""What the progress of a run says and how it is drawn: its total counts
the jobs that have something to run; its ETA follows the critical path of
the jobs left, each estimated by its rule's recorded durations (checked on
a workflow whose history is known); on a terminal a bar stays below the
lines of the run (each finished job's with its time), coloured unless
NO_COLOR is set; anywhere else, plain lines. rich is imported only to draw."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

from conftest import on_a_terminal as run_on_a_terminal
from flow.engine.commands.build import typical_seconds
from flow.engine.commands.progress import LiveDisplay, Status
from flow.engine.commands.report import Reporter
from flow.engine.graph.dag import DAG
from flow.engine.load.loader import find_flowfile, load
from flow.engine.run.eta import Eta

SGR = re.compile(r"\x1b\[[0-9;]*m")  # a colour or style
SECONDS = 0.5  # what each job of the chain takes

# Four jobs, each needing the one before: the chain is the critical path.
CHAIN = f"""\
rule all:
    input: "out/4.txt"

rule slow:
    input: lambda w: [] if w.n == "1" else [f"out/{{int(w.n) - 1}}.txt"]
    output: "out/{{n}}.txt"
    shell: "sleep {SECONDS}; echo {{wildcards.n}} > {{output}}"
"""

FAILS = """\
rule bad:
    output: "bad.txt"
    shell: "echo oops >&2; exit 3"
"""


def test_the_total_counts_only_jobs_with_an_action(project):
    project.flowfile("""\
        rule all:
            input: "a.txt", "b.txt"

        rule make:
            output: "{x}.txt"
            shell: "echo {wildcards.x} > {output}"
        """)
    r = project.run("-j", "1")
    done = [ln for ln in r.stderr.splitlines() if ln.startswith("done  ")]
    assert done[-1].endswith("[2/2]"), r.stderr


def on_a_terminal(project, *args: str, **env: str) -> str:
    """``flow ARGS`` on a pseudo-terminal 200 columns wide (``env`` over the environment)."""
    return run_on_a_terminal(project.root, *args, env={"COLUMNS": "200", "TERM": "xterm-256color", **env})


def bars(screen: str) -> list[str]:
    """The progress lines drawn, without their colours."""
    return [SGR.sub("", seg).rstrip("\r\n") for seg in screen.split("\r\x1b[2K") if seg.startswith("[")]


def parse_clock(text: str) -> float:
    parts = [int(p) for p in text.split(":")]
    return float(sum(p * 60 ** i for i, p in enumerate(reversed(parts))))


# the ETA on a workflow whose history is known -------------------------------------


def test_the_eta_follows_the_chain_of_a_workflow_whose_history_is_known(project, monkeypatch):
    project.flowfile(CHAIN)
    project.run("-j", "4")  # the history: four attempts of slow
    monkeypatch.chdir(project.root)
    typical = typical_seconds()
    assert set(typical) == {"slow"} and typical["slow"] >= SECONDS
    dag = DAG(load(find_flowfile(None)))
    jobs = dag.reachable(dag.targets([]))
    reporter = Reporter(stream=io.StringIO(), live=False)
    reporter.eta = Eta(lambda: jobs, typical_seconds, 4)
    reporter.run_started(4)
    first = next(j for j in jobs if j.rule.name == "slow" and not j.deps)
    reporter.job_started(first, "forced by -F/-R", None, None)
    eta = reporter.eta.seconds(time.monotonic())
    # Along the chain, not over the 4 slots (that would be one job's time).
    assert 4 * typical["slow"] - 0.5 < eta <= 4 * typical["slow"]
    for job in [j for j in jobs if j.rule.name == "slow"][:2]:
        reporter.job_finished(job, typical["slow"])
    reporter.tick()
    reporter.eta.at -= 1  # (a second on: worked out again)
    assert 2 * typical["slow"] - 0.5 < reporter.eta.seconds(time.monotonic()) <= 2 * typical["slow"]


def test_the_bar_on_a_terminal_shows_the_eta_from_the_history_and_the_done_lines_their_times(project):
    project.flowfile(CHAIN)
    project.run("-j", "4")
    expected = 4 * _typical(project)["slow"]
    screen = on_a_terminal(project, "run", "-F", "-j", "4")
    drawn = bars(screen)
    first = next(line for line in drawn if "running 1: slow (n=1)" in line)
    assert re.match(r"\[0/4\] \S+ +0% · 0:0\d elapsed · ETA (\d+:\d\d) · running 1: slow \(n=1\)$", first), first
    eta = parse_clock(re.search(r"ETA (\d+:\d\d)", first).group(1))
    assert abs(eta - expected) <= 1.0, (first, expected)
    for n in range(1, 5):  # each finished job's line stays above the bar, with its time
        assert re.search(rf"done  slow \(n={n}\) \(\d+\.\ds\) \[{n}/4\]\r?\n", screen), screen
    assert "flow: 4 jobs ran, 0 up to date" in screen


def _typical(project) -> dict[str, float]:
    cwd = os.getcwd()
    os.chdir(project.root)
    try:
        return typical_seconds()
    finally:
        os.chdir(cwd)


# colours ----------------------------------------------------------------------------


def test_a_failure_is_red_on_a_terminal_and_no_colour_is_drawn_with_no_color(project):
    project.flowfile(FAILS)
    coloured = on_a_terminal(project, "run")
    assert re.search(r"\x1b\[[0-9;]*31m\s*error bad:", coloured), repr(coloured)
    assert "oops" in coloured  # the job's own stderr, passed through
    plain = on_a_terminal(project, "run", NO_COLOR="1")
    assert "error bad:" in plain and "oops" in plain
    assert not SGR.search(plain), repr(plain)


def test_no_color_leaves_the_bar_and_its_lines_plain(project):
    project.flowfile(CHAIN.replace(f"sleep {SECONDS}; ", ""))
    screen = on_a_terminal(project, "run", NO_COLOR="1")
    assert any(re.match(r"\[\d/4\] ━* +\d+% · ", line) for line in bars(screen)), repr(screen)
    assert not SGR.search(screen), repr(screen)


# plain lines where there is no terminal to draw on ----------------------------------


def test_a_dumb_terminal_gets_the_plain_lines(project):
    project.flowfile(CHAIN.replace(f"sleep {SECONDS}; ", ""))
    screen = on_a_terminal(project, "run", TERM="dumb")
    assert "\x1b" not in screen, repr(screen)
    assert re.search(r"done  slow \(n=4\) \(\d+\.\ds\) \[4/4\]", screen), screen


def test_quiet_draws_no_bar_on_a_terminal(project):
    project.flowfile(CHAIN.replace(f"sleep {SECONDS}; ", ""))
    screen = on_a_terminal(project, "run", "-q")
    assert "\x1b" not in screen and "done" not in screen, repr(screen)


def test_rich_is_imported_only_to_draw_a_bar(project):
    project.flowfile(CHAIN.replace(f"sleep {SECONDS}; ", ""))
    for args in (["--version"], ["run"]):  # start-up, and a run whose output is a pipe
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "flow", *args], cwd=project.root,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert not re.search(r"\|\s+rich\b", proc.stderr), args


# the display ------------------------------------------------------------------------


def test_a_jobs_stderr_is_written_above_the_bar_a_whole_line_at_a_time():
    out = io.StringIO()
    display = LiveDisplay(out)
    display.draw(Status(1, 4, running=["a"]))
    display.job_output(b"half a ")
    assert "half" not in out.getvalue()  # held: the bar would land in the middle of it
    display.job_output(b"line\nand the start of another")
    screen = out.getvalue()
    assert "\r\x1b[2Khalf a line\n" in screen and screen.endswith("running 1: a")
    display.close()
    assert out.getvalue().endswith("\r\x1b[2Kand the start of another\n")
    display.job_output(b"after\n")  # (the bar is gone: straight through)
    assert out.getvalue().endswith("another\nafter\n")


def test_the_bar_line_fits_the_terminal():
    out = io.StringIO()
    display = LiveDisplay(out)
    display.console.width = 100
    display.draw(Status(3, 10, failed=1, elapsed=62, eta=35, running=[f"job{i}" * 5 for i in range(5)]))
    line = bars(out.getvalue())[-1]
    assert line.startswith("[3/10] ") and "30% · 1:02 elapsed · ETA 0:35 · 1 failed · running 5: job0" in line
    assert len(line) == 99 and line.endswith("…")
