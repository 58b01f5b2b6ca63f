"""One runner per working directory.

``flow run`` and ``flow clean`` hold an OS lock (flock on the ``.flow``
directory) while they change files; a second one exits at once and says who
holds it. The kernel drops the lock when its holder dies, so nothing is left
to unlock by hand, and removing ``.flow/lock`` lets no second runner in. Jobs
do not hold it: after a kill -9 the next run stops what the dead one left
running and goes on at once. Commands that only read (``run -n``, ``list``, ``dag``) never take it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import processes_in, wait_for

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


def test_after_kill_9_the_next_run_starts_at_once_and_stops_the_dead_runs_jobs(project, running):
    old_job = _job_pids(project)
    os.killpg(running.pid, signal.SIGKILL)  # flow's own group: its jobs, in sessions of their own, live on
    running.wait(timeout=20)
    assert old_job and all(_alive(p) for p in old_job)
    os.remove(project.root / "started")
    restarted = project.start("run", "-j", "2")
    wait_for(lambda: project.exists("started") or restarted.poll() is not None, what="the slow job to start again")
    assert restarted.poll() is None, project.read("flow.err")
    assert not any(_alive(p) for p in old_job), "the dead run's job still runs beside the new one"
    err = project.read("flow.err")
    assert f"left running by flow run (pid {running.pid})" in err
    assert err.count("flow: stopped") == 1
    os.remove(project.root / "hold")
    assert restarted.wait(timeout=20) == 0, project.read("flow.err")
    assert project.read("slow.txt") == "done\n"


def test_removing_the_lock_file_does_not_let_a_second_runner_in(project, running):
    os.remove(project.root / ".flow/lock")
    r = project.flow("run", "-F", timeout=10)
    assert r.returncode == 2, r.output
    assert "another flow run" in r.stderr


def test_clean_after_kill_9_stops_the_dead_runs_jobs_first(project, running):
    old_job = _job_pids(project)
    os.killpg(running.pid, signal.SIGKILL)
    running.wait(timeout=20)
    r = project.flow("clean", timeout=20)
    assert r.returncode == 0, r.output
    assert "left running by flow run" in r.stderr
    assert not any(_alive(p) for p in old_job)


LEAVING_FLOWFILE = """\
rule all:
    input: "sub.txt", "own.txt", "py.txt"

rule sub:
    output: "sub.txt"
    shell: "(sleep 60 &); echo $$ > {output}"

rule own:
    output: "own.txt"
    shell: "setsid sh -c 'echo $$ > own.pid; exec sleep 61' > /dev/null 2>&1 & until [ -s own.pid ]; do sleep 0.01; done; echo ok > {output}"

rule py:
    output: "py.txt"
    run:
        import subprocess
        subprocess.Popen(["sleep", "62"])
        subprocess.Popen(["sleep", "63"], start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        open(output[0], "w").write("ok\\n")
"""


def _sleeping(project, seconds: int) -> list[int]:
    return [p for p in processes_in(project.root) if _cmdline(p) == ["sleep", str(seconds)]]


def test_a_job_that_leaves_processes_behind_does_not_lock_out_the_next_run(project):
    project.flowfile(LEAVING_FLOWFILE)
    try:
        project.run("-j", "2")
        r = project.flow("run", "-F", "-j", "2", timeout=20)
        assert r.returncode == 0, r.output
    finally:
        _kill_sleepers(project)


ALIVE = ("p=$(cat {input}); if [ -e /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status; "
         "then echo alive; else echo gone; fi > {output}")


def test_what_a_job_leaves_in_its_process_group_ends_with_the_job(project):
    project.flowfile(f"""\
rule all:
    input: "shell.state", "py.state"

rule shell_job:
    output: "shell.pid"
    shell: "(sleep 60 & echo $! > {{output}})"

rule py_job:
    output: "py.pid"
    run:
        import subprocess
        p = subprocess.Popen(["sleep", "62"])
        open(output[0], "w").write(str(p.pid))

rule state:
    input: "{{name}}.pid"
    output: "{{name}}.state"
    shell: "{ALIVE}"
""")
    try:
        project.run("-j", "1")
        assert project.read("shell.state") == "gone\n"
        assert project.read("py.state") == "gone\n"
    finally:
        _kill_sleepers(project)


def test_processes_that_leave_their_session_outlive_the_job_as_documented(project):
    project.flowfile(LEAVING_FLOWFILE)
    try:
        project.run("-j", "2")
        assert _sleeping(project, 61) and _sleeping(project, 63)
    finally:
        _kill_sleepers(project)


def test_ctrl_c_leaves_no_process_of_the_run_alive_not_even_those_that_left_their_session(project):
    project.flowfile(LEAVING_FLOWFILE.replace('"sub.txt", "own.txt", "py.txt"', '"sub.txt", "own.txt", "py.txt", "hang.txt"')
                     + '\nrule hang:\n    output: "hang.txt"\n    shell: "touch hanging; sleep 64"\n')
    try:
        proc = project.start("run", "-j", "4")
        wait_for(lambda: project.exists("hanging") and project.exists("py.txt") and project.exists("own.txt"),
                 what="the jobs to start")
        wait_for(lambda: _sleeping(project, 63) and _sleeping(project, 61), what="the session leavers to start")
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=20) == 130, project.read("flow.err")
        assert processes_in(project.root) == []
    finally:
        _kill_sleepers(project)


def _job_pids(project) -> list[int]:
    """The slow job's shell (its short sleeps come and go)."""
    return [p for p in processes_in(project.root) if "while [ -e hold ]" in " ".join(_cmdline(p))]


def _cmdline(pid: int) -> list[str]:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode(errors="replace").split("\0"))
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_sleepers(project) -> None:
    for pid in processes_in(project.root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
