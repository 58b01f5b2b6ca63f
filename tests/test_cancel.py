"""``flow cancel``: stop the run that holds this directory from another
terminal, as Ctrl-C in its own would; what it finished stays recorded."""

from __future__ import annotations

from conftest import wait_for

FLOWFILE = """\
rule all:
    input: "slow.txt", expand("quick/{n}.txt", n=range(5))

rule slow:
    output: "slow.txt"
    shell: "echo started > started; sleep 60; echo done > {output}"

rule quick:
    output: "quick/{n}.txt"
    shell: "echo {wildcards.n} > {output}"
"""


def _running(project):
    project.flowfile(FLOWFILE)
    proc = project.start("run", "-j", "2")
    wait_for(lambda: project.exists("started") and len(list((project.root / "quick").glob("*.txt"))) == 5
             or proc.poll() is not None, what="the quick jobs to finish and the slow one to start")
    assert proc.poll() is None, project.read("flow.err")
    return proc


def test_cancel_stops_the_run_as_ctrl_c_would(project):
    proc = _running(project)
    r = project.flow("cancel")
    assert r.returncode == 0, r.stderr
    assert proc.wait(timeout=30) == 130
    assert not project.exists("slow.txt")
    assert "5 jobs it finished are recorded and will not run again" in r.stderr


def test_after_cancel_the_next_run_makes_only_what_was_not_finished(project):
    proc = _running(project)
    project.flow("cancel")
    proc.wait(timeout=30)
    assert project.would_run() == ["slow"]


def test_cancel_with_no_run_says_there_is_nothing_to_cancel(project):
    project.flowfile(FLOWFILE)
    r = project.flow("cancel")
    assert r.returncode == 0 and "nothing to cancel" in r.stderr


def test_cancel_stops_a_run_started_in_the_background_by_a_script(project):
    # (a script's background job ignores SIGINT: Ctrl-C in its terminal must not reach it)
    import signal
    import subprocess

    from conftest import FLOW

    project.flowfile(FLOWFILE)
    proc = subprocess.Popen([*FLOW, "run", "-j", "2"], cwd=project.root, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    wait_for(lambda: project.exists("started") or proc.poll() is not None, what="the slow job to start")
    assert project.flow("cancel").returncode == 0
    assert proc.wait(timeout=30) != 0 and not project.exists("slow.txt")
