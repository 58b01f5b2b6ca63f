"""The local executor runs shell jobs and reports each one's end exactly once:
with one watcher thread where the system has process file descriptors, and
with a thread per job where it has not (both ways are tested here)."""

from __future__ import annotations

import pytest
from flow.engine.run import local as executor_module
from flow.engine.run import processes
from flow.engine.run.executor import Task
from flow.engine.run.local import LocalExecutor


@pytest.fixture(params=["watcher", "thread per job"])
def executor(request, monkeypatch):
    if request.param == "watcher":
        if not processes.available():
            pytest.fail("this Linux has no pidfd_open: the watcher cannot be tested here")
    else:
        monkeypatch.setattr(executor_module.processes, "available", lambda: False)
    ex = LocalExecutor(2)
    assert (ex.watcher is not None) == (request.param == "watcher")
    yield ex
    ex.shutdown()


def _all(ex: LocalExecutor, n: int) -> dict:
    done = {}
    while len(done) < n:
        for c in ex.wait(30):
            assert c.job_id not in done, f"{c.job_id} reported twice"
            done[c.job_id] = c
    return done


def test_jobs_that_succeed_report_success_and_their_resource_use(executor, tmp_path):
    for i in range(20):
        executor.submit(Task(f"j{i}", "shell", f"echo {i} > {tmp_path}/{i}.txt"))
    done = _all(executor, 20)
    assert all(c.ok and c.returncode == 0 and c.cpu_seconds is not None for c in done.values())
    assert (tmp_path / "7.txt").read_text() == "7\n"


def test_a_failed_job_reports_its_status_and_the_end_of_its_stderr(executor):
    executor.submit(Task("bad", "shell", "for i in $(seq 1 30); do echo line $i >&2; done; exit 3"))
    c = _all(executor, 1)["bad"]
    assert not c.ok and c.returncode == 3 and "exit status 3" in c.error
    assert c.stderr_tail.split("\n") == [f"line {i}" for i in range(21, 31)]


def test_a_failed_job_is_reported_although_a_process_it_left_holds_its_stderr(executor):
    executor.submit(Task("bad", "shell", "(sleep 3 &) ; echo gone >&2; exit 1"))
    c = _all(executor, 1)["bad"]
    assert not c.ok and c.stderr_tail == "gone"


def test_a_job_killed_by_a_signal_says_which(executor):
    executor.submit(Task("killed", "shell", "kill -KILL $$"))
    c = _all(executor, 1)["killed"]
    assert not c.ok and "SIGKILL" in c.error
