"""``flow run --executor dask``: jobs on a real Dask cluster.

Most tests use the ``LocalCluster`` flow starts itself (two worker
processes); placement by resources uses a ``LocalCluster`` started here
whose two workers offer different resources, and the worker without flow
one of ``dask scheduler`` and ``dask worker`` processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_for

DASK = ["--executor", "dask"]
BIN = Path(sys.executable).parent


def _parent_of_bash() -> str:
    """A shell snippet writing what started the job's bash (its parent's command line)."""
    return "tr '\\\\0' ' ' < /proc/$PPID/cmdline"


def test_shell_and_run_jobs_run_on_the_cluster_and_a_second_run_runs_nothing(project):
    project.flowfile(f"""
        N = [1, 2, 3]
        rule all:
            input: "total.txt"
        rule make:
            output: "out/{{n}}.txt", "out/{{n}}.parent"
            shell: "echo {{wildcards.n}} > {{output[0]}}; {_parent_of_bash()} > {{output[1]}}"
        rule total:
            input: expand("out/{{n}}.txt", n=N)
            output: "total.txt"
            run:
                import os
                with open(output[0], "w") as f:
                    f.write(f"{{sum(int(open(p).read()) for p in input)}} {{os.getpid() != {os.getpid()}}}")
    """)
    r = project.run(*DASK)
    assert project.read("total.txt") == "6 True"
    for n in (1, 2, 3):  # (a worker of the cluster started the command, not flow)
        parent = project.read(f"out/{n}.parent")
        assert "flow run" not in parent and "multiprocessing" in parent, parent
    assert "4 jobs ran" in r.stderr
    again = project.run(*DASK)
    assert "0 jobs ran" in again.stderr or "up to date" in again.stderr


def test_localrules_jobs_run_on_this_machine(project):
    project.flowfile(f"""
        localrules: here
        rule all:
            input: "here.txt", "there.txt"
        rule here:
            output: "here.txt"
            shell: "{_parent_of_bash()} > {{output}}"
        rule there:
            output: "there.txt"
            shell: "{_parent_of_bash()} > {{output}}"
    """)
    project.run(*DASK)
    assert "flow run" in project.read("here.txt")
    assert "flow run" not in project.read("there.txt")


def test_a_failing_job_on_the_cluster_names_its_exit_status_and_last_words(project):
    project.flowfile("""
        rule bad:
            output: "bad.txt"
            shell: "echo half > {output}; echo 'no such sample' >&2; exit 3"
    """)
    r = project.flow("run", *DASK)
    assert r.returncode == 1
    assert "exit status 3" in r.stderr and "no such sample" in r.stderr
    assert not project.exists("bad.txt")  # (a failed attempt's output goes)


def test_a_failing_python_job_on_the_cluster_shows_the_users_error(project):
    project.flowfile("""
        rule bad:
            output: "bad.txt"
            run:
                raise ValueError("sample 7 has no reads")
    """)
    r = project.flow("run", *DASK)
    assert r.returncode == 1
    assert "ValueError: sample 7 has no reads" in r.stderr


def test_a_job_past_its_runtime_is_stopped_on_the_cluster(project):
    project.flowfile("""
        rule slow:
            output: "slow.txt"
            resources: runtime="1s"
            shell: "echo $$ > pid; sleep 60; echo done > {output}"
    """)
    started = time.monotonic()
    r = project.flow("run", *DASK)
    assert r.returncode == 1
    assert "runtime" in r.stderr and "stopped" in r.stderr
    assert time.monotonic() - started < 30
    assert not _alive(int(project.read("pid")))


def test_a_job_stopped_past_its_runtime_is_retried_on_the_cluster(project):
    project.flowfile("""
        rule slow:
            output: "slow.txt"
            resources: runtime="1s"
            retries: 1
            shell: "echo try >> tries; sleep 60; echo done > {output}"
    """)
    assert project.flow("run", *DASK).returncode == 1
    assert project.read("tries") == "try\ntry\n"


def test_ctrl_c_stops_the_jobs_running_on_the_cluster(project):
    project.flowfile("""
        rule slow:
            output: "slow.txt"
            shell: "echo $$ $PPID > pids; sleep 60; echo done > {output}"
    """)
    proc = project.start("run", *DASK)
    wait_for(lambda: project.exists("pids") and len(project.read("pids").split()) == 2, timeout=60,
             what="the job to start on the cluster")
    job, worker = (int(p) for p in project.read("pids").split())
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert not _alive(job)  # the job is stopped,
    wait_for(lambda: not _alive(worker), what="the local cluster to close")  # and the cluster closed
    assert not project.exists("slow.txt")
    assert "stopped by SIGINT" in (project.root / "flow.err").read_text()


def test_a_job_whose_worker_dies_runs_again_on_another_without_counting_as_a_failure(project):
    project.flowfile("""
        rule once:
            output: "once.txt"
            shell: "echo $$ $PPID >> attempts; [ -e went ] || {{ touch went; sleep 60; }}; echo ok >> {output}"
    """)
    proc = project.start("run", *DASK)
    wait_for(lambda: project.exists("attempts"), timeout=60, what="the job to start on the cluster")
    wait_for(lambda: project.exists("went") and len(project.read("attempts").split()) == 2,
             what="the first attempt to be under way")
    job, worker = (int(p) for p in project.read("attempts").split())
    os.kill(worker, signal.SIGKILL)  # (its nanny starts another; the job it ran runs on, in its own session)
    assert proc.wait(timeout=90) == 0, (project.root / "flow.err").read_text()
    assert project.read("once.txt") == "ok\n"
    assert len(project.read("attempts").splitlines()) == 2  # it ran again, elsewhere,
    assert not _alive(job)  # and the first attempt, left running by its worker, was stopped
    assert "error" not in (project.root / "flow.err").read_text()


# ---------------------------------------------------------------------- a cluster of dask processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cluster(logs: Path, workers: list[tuple[str, list[str], dict]]):
    """A scheduler and ``workers`` (name, options, environment) as processes; its address and them."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler", "w"),
                              start_new_session=True)]
    for name, options, env in workers:
        procs.append(subprocess.Popen([BIN / "dask", "worker", address, "--name", name, "--nthreads", "1",
                                       "--no-nanny", "--no-dashboard", *options],
                                      stdout=subprocess.DEVNULL, stderr=open(logs / name, "w"),
                                      env={**os.environ, **env}, start_new_session=True))
    subprocess.run([sys.executable, "-c", "import sys; from distributed import Client; "  # (not in this process:
                    "Client(sys.argv[1], timeout=60).wait_for_workers(int(sys.argv[2]), timeout=60)",  # its threads
                    address, str(len(workers))], check=True, timeout=90)  # would stay, and other tests fork)
    return address, procs


def _stop_cluster(procs) -> None:
    for p in reversed(procs):  # (workers first: a worker without its scheduler tries it again for long)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster():
    """A real ``LocalCluster`` of two workers, "big" offering mem_mb=16000 and
    "small" 1000 (``dask_cluster.py``): its address, and each worker's process id by name."""
    host = subprocess.Popen([sys.executable, Path(__file__).parent / "dask_cluster.py"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    started = json.loads(host.stdout.readline())
    yield started["address"], started["pids"]
    host.stdin.close()
    try:
        host.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(host.pid, signal.SIGKILL)
        host.wait()


def test_a_worker_without_flow_fails_the_job_saying_so(project, tmp_path_factory):
    hidden = tmp_path_factory.mktemp("no-flow")  # (a Python on whose path flow cannot be imported)
    (hidden / "sitecustomize.py").write_text("import sys\nsys.modules['flow'] = None\n")
    address, procs = _start_cluster(tmp_path_factory.mktemp("dask"), [("bare", [], {"PYTHONPATH": str(hidden)})])
    try:
        project.flowfile("""
            rule a:
                output: "a.txt"
                shell: "touch {output}"
        """)
        r = project.flow("run", *DASK, "--scheduler-address", address, timeout=60)
    finally:
        _stop_cluster(procs)
    assert r.returncode == 1
    assert "cannot import flow" in r.stderr and "install flow on every worker" in r.stderr


def test_a_job_goes_only_to_a_worker_that_offers_its_resources(project, cluster):
    address, pids = cluster
    project.flowfile("""
        rule all:
            input: expand("{size}.txt", size=["large", "any1", "any2", "any3", "any4"])
        rule large:
            output: "large.txt"
            resources: mem_mb=8000
            shell: "echo $PPID > {output}"
        rule any:
            output: "any{i}.txt"
            shell: "echo $PPID > {output}"
    """)
    project.run(*DASK, "--scheduler-address", address)
    assert int(project.read("large.txt")) == pids["big"]


def test_a_job_no_worker_has_the_resources_for_fails_at_once_saying_so(project, cluster):
    project.flowfile("""
        rule huge:
            output: "huge.txt"
            resources: mem_mb=64000
            shell: "touch {output}"
    """)
    r = project.flow("run", *DASK, "--scheduler-address", cluster[0])
    assert r.returncode == 1
    assert "mem_mb=64000" in r.stderr and "16000" in r.stderr and "dask worker --resources" in r.stderr


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ---------------------------------------------------------------------- --latency-wait (any executor)


LATE = """
    rule late:
        output: "late.txt"
        shell: "touch ended"
"""


def test_an_output_that_appears_within_the_latency_wait_counts(project):
    project.flowfile(LATE)

    def shared_file_system_shows_it_late():  # (flow ends what a job leaves running: the test writes it)
        wait_for(lambda: project.exists("ended"), timeout=60, what="the job to end")
        time.sleep(0.5)
        project.write("late.tmp", "late\n")  # (whole when it appears, as a file system shows a closed file)
        os.replace(project.root / "late.tmp", project.root / "late.txt")

    writer = threading.Thread(target=shared_file_system_shows_it_late)
    writer.start()
    project.run("--latency-wait", "30")
    writer.join()
    assert "nothing to do" in project.run().stderr


def test_an_output_that_does_not_appear_within_the_latency_wait_fails_the_job_saying_so(project):
    project.flowfile(LATE)
    r = project.flow("run", "--latency-wait", "0.5")
    assert r.returncode == 1
    assert "did not make its output late.txt (waited 0.5 s" in r.stderr and "--latency-wait" in r.stderr


def test_a_scheduler_address_dask_cannot_read_is_a_user_error(project):
    project.flowfile("""
        rule a:
            output: "a.txt"
            shell: "touch {output}"
    """)
    r = project.flow("run", *DASK, "--scheduler-address", "nowhere")
    assert r.returncode == 2
    assert "cannot reach the Dask scheduler at nowhere" in r.stderr and "Traceback" not in r.stderr
