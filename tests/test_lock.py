"""One runner per working directory.

``flow run`` and ``flow clean`` hold an OS lock (flock on ``.flow/lock``)
while they change files; a second one exits at once and says who holds it.
The kernel drops the lock when its holder dies, so nothing is left to unlock
by hand. Commands that only read (``run -n``, ``list``, ``dag``) never take it."""

from __future__ import annotations

import os
import signal

import pytest
from conftest import wait_for

HOLDING_FLOWFILE = """\
rule all:
    input: "slow.txt", expand("quick/{n}.txt", n=range(40))

rule slow:
    output: "slow.txt"
    shell: "echo started > started; while [ -e hold ]; do sleep 0.05; done; echo done > {output}"

rule quick:
    output: "quick/{n}.txt"
    shell: "echo {wildcards.n} > {output}"
"""


@pytest.fixture
def running(project):
    """A ``flow run`` that holds the directory until the file ``hold`` goes away."""
    project.flowfile(HOLDING_FLOWFILE)
    project.write("hold", "")
    proc = project.start("run", "-j", "2")
    wait_for(lambda: project.exists("started") or proc.poll() is not None, what="the slow job to start")
    assert proc.poll() is None, project.read("flow.err")
    yield proc
    if project.exists("hold"):
        os.remove(project.root / "hold")
    if proc.poll() is None:
        proc.wait(timeout=20)


def test_second_run_exits_at_once_naming_the_runner(project, running):
    r = project.flow("run", timeout=10)
    assert r.returncode == 2, r.output
    assert f"another flow run (pid {running.pid})" in r.stderr
    assert "Traceback" not in r.output


def _quick_outputs(project) -> dict[str, int]:
    wait_for(lambda: len(list((project.root / "quick").glob("*.txt"))) == 40, what="the quick jobs")
    return {p.name: p.stat().st_mtime_ns for p in (project.root / "quick").iterdir()}


def test_second_run_changes_nothing(project, running):
    before = _quick_outputs(project)
    project.flow("run", "-F", timeout=10)
    assert not project.exists("slow.txt")
    assert _quick_outputs(project) == before


def test_clean_during_a_run_exits_at_once_and_removes_nothing(project, running):
    before = _quick_outputs(project)
    r = project.flow("clean", timeout=10)
    assert r.returncode == 2, r.output
    assert "another flow run" in r.stderr
    assert _quick_outputs(project) == before


def test_dry_run_works_during_a_run(project, running):
    r = project.flow("run", "-n", timeout=20)
    assert r.returncode == 0, r.output
    assert "would run  slow" in r.stdout


def test_list_works_during_a_run(project, running):
    r = project.flow("list", timeout=20)
    assert r.returncode == 0, r.output
    assert "quick" in r.stdout


def test_dag_works_during_a_run(project, running):
    r = project.flow("dag", timeout=20)
    assert r.returncode == 0, r.output
    assert "digraph" in r.stdout


def test_run_goes_on_once_the_first_has_finished(project, running):
    os.remove(project.root / "hold")
    assert running.wait(timeout=20) == 0, project.read("flow.err")
    assert project.ran() == []
    assert project.read("slow.txt") == "done\n"


def test_a_runner_killed_with_kill_9_leaves_no_lock_behind(project, running):
    os.killpg(running.pid, signal.SIGKILL)
    running.wait(timeout=20)
    # The job flow started runs in a session of its own and holds the lock it
    # inherited until it ends: no new run may mix its writes with the job's.
    r = project.flow("run", timeout=10)
    assert r.returncode == 2 and "another flow run" in r.stderr, r.output
    os.remove(project.root / "hold")
    wait_for(lambda: project.exists("slow.txt"), what="the orphaned job to end")
    wait_for(lambda: project.flow("run", "-q", timeout=20).returncode == 0, timeout=10,
             what="the lock to be released")
    assert project.read("slow.txt") == "done\n"
