"""Crash safety: a run stopped by ``kill -9``, Ctrl-C or SIGTERM resumes.

Each finished job is recorded in its own transaction in ``.flow/state.db``;
a job that was running was not, so its outputs count as out of date. These
tests stop a real ``flow run`` at various moments and check that the next run
finishes the work with correct files, never reruns a job recorded as
finished, and that the state database is intact."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from conftest import processes_in, wait_for

# processes ---------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a live process, None if there is none.
    A zombie counts as gone: PID 1 here may never reap orphans."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return fields[0], int(fields[2])


def _alive(pid: int) -> bool:
    return _proc_stat(pid) is not None


def _group_alive(pgid: int) -> list[int]:
    """The live (non-zombie) processes of process group ``pgid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None and st[1] == pgid:
                out.append(int(entry))
    return out


# (a) kill -9 (many more moments in test_crash.py) ------------------------------------------------


def test_rerun_right_after_kill_9_ends_with_correct_output_despite_the_killed_runs_job(project):
    # kill -9 stops flow but not, by itself, the job it had started; a run
    # started at once must still end with the output the job makes, and never
    # record a mixture of the old job's and the new job's writes as done.
    project.flowfile("""\
rule a:
    output: "out.txt"
    shell: "echo start > {output}; sleep 1; echo end >> {output}"
""")
    proc = project.start("run", "-j", "1")
    wait_for(lambda: project.exists("out.txt"), what="the job to start")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=20)
    project.flow("run")  # at once, as a user would
    wait_for(lambda: not processes_in(project.root), timeout=10, what="all jobs to end")
    project.run()
    assert project.read("out.txt") == "start\nend\n"


# (b) Ctrl-C, (c) SIGTERM --------------------------------------------------------------------------

SLOW_FLOWFILE = """\
rule all:
    input: "fast.txt", expand("slow/{n}.txt", n=[1, 2])

rule fast:
    output: "fast.txt"
    shell: "echo fast > {output}"

rule slow:
    input: "fast.txt"
    output: "slow/{n}.txt"
    shell: "echo $$ > pids/{wildcards.n}; echo partial > {output}; if [ -e slow.flag ]; then sleep 30; fi; echo rest >> {output}"
"""


def _interrupted_run(project, sig: int) -> tuple[int, str, list[int]]:
    """Start a run whose slow jobs hang, send ``sig`` to flow alone once both
    have written part of their output; the exit code, stderr and job PIDs."""
    project.flowfile(SLOW_FLOWFILE)
    (project.root / "pids").mkdir()
    project.write("slow.flag", "")
    proc = project.start("run", "-j", "2")
    pid_files = [project.root / "pids/1", project.root / "pids/2"]
    wait_for(lambda: all(p.exists() and p.read_text().strip() for p in pid_files)
              and all(project.exists(f"slow/{n}.txt") for n in (1, 2)), what="both slow jobs to start")
    time.sleep(0.1)  # the jobs are now inside `sleep 30`
    pids = [int(p.read_text()) for p in pid_files]
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=15)
    return code, project.read("flow.err"), pids


def test_ctrl_c_exits_130_and_says_flow_run_resumes(project):
    code, err, _ = _interrupted_run(project, signal.SIGINT)
    assert code == 130, err
    assert "stopped by SIGINT; 1 job finished" in err, err
    assert "`flow run` resumes" in err, err


def test_ctrl_c_stops_the_running_jobs_and_their_children(project):
    _, err, pids = _interrupted_run(project, signal.SIGINT)
    time.sleep(0.3)
    for pid in pids:
        assert not _alive(pid), f"job shell {pid} still runs\n{err}"
        assert _group_alive(pid) == [], f"processes of job group {pid} still run\n{err}"


def test_ctrl_c_kills_a_job_that_ignores_sigterm(project):
    project.flowfile("""\
rule stubborn:
    output: "out.txt"
    shell: "trap '' TERM INT; echo $$ > pid; echo start > {output}; sleep 30; echo end >> {output}"
""")
    proc = project.start("run", "-j", "1")
    wait_for(lambda: project.exists("out.txt") and project.exists("pid") and project.read("pid").strip(),
              what="the job to start")
    time.sleep(0.1)
    pid = int(project.read("pid"))
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=15) == 130, project.read("flow.err")
    time.sleep(0.3)
    assert _group_alive(pid) == []
    assert not project.exists("out.txt")


def test_ctrl_c_removes_partial_outputs_of_running_jobs(project):
    _, err, _ = _interrupted_run(project, signal.SIGINT)
    assert not project.exists("slow/1.txt"), err
    assert not project.exists("slow/2.txt"), err
    assert project.read("fast.txt") == "fast\n"


def test_run_after_ctrl_c_reruns_only_the_interrupted_jobs(project):
    _interrupted_run(project, signal.SIGINT)
    os.remove(project.root / "slow.flag")
    assert sorted(project.ran()) == ["slow (n=1)", "slow (n=2)"]
    assert project.read("slow/1.txt") == "partial\nrest\n"
    assert project.integrity() == "ok"


def test_ctrl_c_stops_python_run_block_jobs(project):
    project.flowfile("""\
rule all:
    input: "py.txt"

rule py:
    output: "py.txt"
    run:
        import os, time
        with open("pid", "w") as f:
            f.write(str(os.getpid()))
        with open(output[0], "w") as f:
            f.write("partial")
        time.sleep(30)
""")
    proc = project.start("run", "-j", "1")
    wait_for(lambda: project.exists("py.txt") and project.exists("pid") and project.read("pid"),
              what="the run: block to start")
    pid = int(project.read("pid"))
    os.kill(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=15)
    assert code == 130, project.read("flow.err")
    time.sleep(0.3)
    assert not _alive(pid)
    assert not project.exists("py.txt")


def test_sigterm_exits_143(project):
    code, err, _ = _interrupted_run(project, signal.SIGTERM)
    assert code == 143, err
    assert "stopped by SIGTERM; 1 job finished" in err, err


def test_sigterm_stops_the_running_jobs_and_removes_their_partial_outputs(project):
    _, err, pids = _interrupted_run(project, signal.SIGTERM)
    time.sleep(0.3)
    for pid in pids:
        assert _group_alive(pid) == [], f"processes of job group {pid} still run\n{err}"
    assert not project.exists("slow/1.txt"), err


# (d) a half-written output is never taken as done ---------------------------------------------------


def test_half_written_output_from_a_killed_run_is_rerun(project):
    project.flowfile(SLOW_FLOWFILE)
    (project.root / "pids").mkdir()
    project.write("slow.flag", "")
    proc = project.start("run", "-j", "2")
    wait_for(lambda: project.exists("pids/1") and project.read("pids/1").strip()
              and project.exists("slow/1.txt"), what="a slow job to start")
    time.sleep(0.1)
    job = int(project.read("pids/1"))
    # A crash: flow and its jobs die at once, leaving `slow/1.txt` half written.
    os.killpg(proc.pid, signal.SIGKILL)
    for n in (1, 2):
        try:
            os.killpg(int(project.read(f"pids/{n}")), signal.SIGKILL)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            pass
    proc.wait(timeout=20)
    wait_for(lambda: not _group_alive(job), what="the job to die")
    assert project.read("slow/1.txt") == "partial\n"
    os.remove(project.root / "slow.flag")

    reasons = [ln for ln in project.run("-n").stdout.splitlines() if ln.startswith("would run  slow (n=1)")]
    assert reasons, "the half-written output was taken as done"
    assert "slow (n=1)" in project.ran()
    assert project.read("slow/1.txt") == "partial\nrest\n"
    assert project.ran() == []


def test_sighup_stops_the_running_jobs_and_exits_129(project):
    # The terminal flow runs in was closed: its jobs must not run on unseen.
    code, err, pids = _interrupted_run(project, signal.SIGHUP)
    assert code == 129, err
    assert "SIGHUP" in err, err
    time.sleep(0.3)
    for pid in pids:
        assert _group_alive(pid) == [], f"processes of job group {pid} still run\n{err}"
    assert not project.exists("slow/1.txt"), err


def test_a_second_ctrl_c_kills_the_jobs_at_once_and_still_removes_their_outputs(project):
    project.flowfile("""\
rule stubborn:
    output: "out.txt"
    shell: "trap '' TERM INT; echo $$ > pid; echo partial > {output}; sleep 30; echo end >> {output}"
""")
    proc = project.start("run", "-j", "1")
    wait_for(lambda: project.exists("out.txt") and project.exists("pid") and project.read("pid").strip(),
             what="the job to start")
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGINT)  # impatient: Ctrl-C again while flow stops the job
    assert proc.wait(timeout=15) == 130, project.read("flow.err")
    assert "Traceback" not in project.read("flow.err")
    assert not project.exists("out.txt")
    assert _group_alive(int(project.read("pid"))) == []


def test_ctrl_c_at_any_moment_of_a_run_of_short_jobs_leaves_no_job_running(project):
    # Jobs start every few milliseconds: some interrupts land while one is being started.
    project.flowfile('''
        rule all:
            input: expand("out/{i}.txt", i=range(1000))

        rule short:
            output: "out/{i}.txt"
            shell: "sleep 0.02; touch {output}"
    ''')
    for k, delay in enumerate((0.35, 0.5, 0.62, 0.8, 0.97, 1.1)):
        proc = project.start("run", "-j", "2")
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130, (k, project.read("flow.err"))
        wait_for(lambda: not processes_in(project.root), timeout=10, what=f"no job left after interrupt {k}")
