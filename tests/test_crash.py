"""Crash at any moment: ``kill -9`` never costs a finished job or a correct file.

A workflow of 305 short jobs (shell and ``run:`` jobs, most writing their
output in pieces, with ``temp()`` and ``directory()`` outputs) is killed with
SIGKILL, flow's whole process group at once, at seeded moments; then ``flow
run`` goes on to the end. Afterwards every file is byte-identical to a clean
run's, no job recorded as finished before the kill ran again (each job counts
its runs in ``counts/``), every other job ran exactly once more, and SQLite
finds the state store intact.

A failing moment is replayed with ``pytest tests/test_crash.py -k m07``; set
``FLOW_CRASH_SEED`` for other moments and ``FLOW_CRASH_MOMENTS`` for more."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from conftest import Project, processes_in, wait_for

GROUPS, PER_GROUP = 8, 12  # 96 each of src, square, cube; 8 group, 8 shard; 1 total

FLOWFILE = f"""\
wildcard_constraints:
    g="[0-9]+",
    k="[0-9]+"

rule all:
    input: "total.txt", expand("shards/{{g}}", g=range({GROUPS}))

rule src:
    output: "src/{{g}}_{{k}}.txt"
    shell: "echo x >> counts/src_{{wildcards.g}}_{{wildcards.k}}; echo {{wildcards.g}} > {{output}}; sleep 0.005; echo {{wildcards.k}} >> {{output}}"

rule square:
    input: "src/{{g}}_{{k}}.txt"
    output: temp("sq/{{g}}_{{k}}.txt")
    run:
        import time
        with open(f"counts/square_{{wildcards.g}}_{{wildcards.k}}", "a") as c:
            c.write("x\\n")
        g, k = (int(line) for line in open(input[0]))
        with open(output[0], "w") as f:
            f.write(f"{{g * g}}\\n")
            f.flush()
            time.sleep(0.003)
            f.write(f"{{k * k}}\\n")

rule cube:
    input: "sq/{{g}}_{{k}}.txt"
    output: "cube/{{g}}_{{k}}.txt"
    shell: "echo x >> counts/cube_{{wildcards.g}}_{{wildcards.k}}; head -c 3 {{input}} > {{output}}; sleep 0.005; tail -c +4 {{input}} >> {{output}}; echo cubed >> {{output}}"

rule group:
    input: expand("cube/{{{{g}}}}_{{k}}.txt", k=range({PER_GROUP}))
    output: "group/{{g}}.txt"
    run:
        import time
        with open(f"counts/group_{{wildcards.g}}", "a") as c:
            c.write("x\\n")
        with open(output[0], "w") as f:
            for path in input:
                f.write(open(path).read())
                f.flush()
                time.sleep(0.001)

rule shard:
    input: "group/{{g}}.txt"
    output: directory("shards/{{g}}")
    shell: "echo x >> counts/shard_{{wildcards.g}}; mkdir -p {{output}}; head -n 5 {{input}} > {{output}}/a; sleep 0.01; tail -n +6 {{input}} > {{output}}/b"

rule total:
    input: expand("group/{{g}}.txt", g=range({GROUPS}))
    output: "total.txt"
    shell: "echo x >> counts/total; cat {{input}} > {{output}}; sleep 0.01; wc -l {{input}} >> {{output}}"
"""


def _jobs() -> dict[str, str]:
    """count file -> the output that records the job as finished."""
    jobs = {}
    for g in range(GROUPS):
        for k in range(PER_GROUP):
            jobs[f"src_{g}_{k}"] = f"src/{g}_{k}.txt"
            jobs[f"square_{g}_{k}"] = f"sq/{g}_{k}.txt"
            jobs[f"cube_{g}_{k}"] = f"cube/{g}_{k}.txt"
        jobs[f"group_{g}"] = f"group/{g}.txt"
        jobs[f"shard_{g}"] = f"shards/{g}"
    jobs["total"] = "total.txt"
    return jobs


JOBS = _jobs()
NOT_OUTPUTS = {".flow", "counts", "flow.err", "Flowfile"}


def _setup(root: Path) -> Project:
    project = Project(root)
    project.flowfile(FLOWFILE)
    (root / "counts").mkdir()
    return project


def _files(root: Path) -> dict[str, bytes]:
    """Every file the workflow made, by path."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in NOT_OUTPUTS]
            filenames = [f for f in filenames if f not in NOT_OUTPUTS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = Path(path).read_bytes()
    return out


def _counts(root: Path) -> dict[str, int]:
    return {p.name: len(p.read_text().splitlines()) for p in (root / "counts").iterdir()}


def _kill_when(project: Project, started: int, delay: float) -> None:
    """Run flow and SIGKILL its process group once ``started`` jobs have
    started and ``delay`` seconds more have passed; then let the jobs that
    outlive it end, as they would before anyone ran flow again."""
    proc = project.start("run", "-j", "2")
    counts = project.root / "counts"
    wait_for(lambda: len(os.listdir(counts)) >= started or proc.poll() is not None, timeout=60,
             what=f"{started} jobs to start")
    time.sleep(delay)
    assert proc.poll() is None, f"flow ended before the kill:\n{project.read('flow.err')}"
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=20) == -signal.SIGKILL, f"flow ended before the kill:\n{project.read('flow.err')}"
    wait_for(lambda: not processes_in(project.root), timeout=20, what="orphaned jobs to end")


def _moments() -> list[tuple[str, int, float]]:
    """(id, jobs started before the kill, further delay): seeded, spread over
    the whole run, a few of them in flow's start-up before any job."""
    seed = int(os.environ.get("FLOW_CRASH_SEED", "20261123"))
    n = int(os.environ.get("FLOW_CRASH_MOMENTS", "24"))
    out = []
    for i in range(n):
        rng = random.Random(f"{seed}-{i}")
        if i < 3:
            started, delay = 0, round(rng.uniform(0.0, 0.4), 3)
        else:
            started, delay = rng.randrange(1, len(JOBS) - 5), round(rng.uniform(0.0, 0.02), 3)
        out.append((f"m{i:02d}-after{started}-plus{delay}s", started, delay))
    return out


MOMENTS = _moments()


@pytest.fixture(scope="module")
def clean_files(tmp_path_factory) -> dict[str, bytes]:
    """The files of an uninterrupted run, to compare byte for byte."""
    project = _setup(tmp_path_factory.mktemp("clean"))
    project.run("-j", "2")
    assert set(_counts(project.root)) == set(JOBS)
    files = _files(project.root)
    assert not any(p.startswith("sq/") for p in files), "temp() files were kept"
    return files


@pytest.fixture
def crash_project(tmp_path) -> Project:
    return _setup(tmp_path)


@pytest.mark.parametrize(("started", "delay"), [m[1:] for m in MOMENTS], ids=[m[0] for m in MOMENTS])
def test_kill_9_at_any_moment_loses_no_finished_job_and_no_byte(crash_project, clean_files, started, delay):
    root = crash_project.root
    _kill_when(crash_project, started, delay)
    recorded = crash_project.recorded_outputs()
    before = _counts(root)
    # With -j 2 at most two started jobs had not been recorded when the last
    # one started: each finished job is recorded in a transaction of its own.
    assert len(recorded) >= started - 2, f"{started} jobs had started, yet {len(recorded)} were recorded"
    if (root / ".flow/state.db").exists():
        assert crash_project.integrity() == "ok"

    crash_project.run("-j", "2")

    assert _files(root) == clean_files
    after = _counts(root)
    for count, output in JOBS.items():
        if output in recorded:
            assert after[count] == before[count], f"{output} was recorded as finished, yet ran again"
        else:
            assert after[count] == before.get(count, 0) + 1, f"{output}: ran {after[count]} times"
    assert crash_project.integrity() == "ok"
    assert crash_project.ran() == []


def test_killed_again_and_again_the_run_still_ends_right(crash_project, clean_files):
    rng = random.Random(int(os.environ.get("FLOW_CRASH_SEED", "20261123")))
    root = crash_project.root
    for _ in range(5):
        already = len(os.listdir(root / "counts"))
        _kill_when(crash_project, min(already + rng.randrange(10, 50), len(JOBS) - 5), rng.uniform(0, 0.02))
        assert crash_project.integrity() == "ok"
    crash_project.run("-j", "2")
    assert _files(root) == clean_files
    assert crash_project.integrity() == "ok"



def test_killed_and_rerun_at_once_again_and_again_no_finished_job_runs_twice(crash_project, clean_files):
    """No waiting for the jobs a killed flow leaves running: each next run
    starts at once, stops them and goes on. (The first jobs take longer
    here, so that kills find jobs that outlive flow.)"""
    crash_project.flowfile(FLOWFILE.replace("sleep 0.005; echo {wildcards.k}", "sleep 0.3; echo {wildcards.k}"))
    rng = random.Random(int(os.environ.get("FLOW_CRASH_SEED", "20261123")) + 1)
    root = crash_project.root
    at_recording: dict[str, int] = {}  # job -> its run count when first seen recorded
    for _ in range(8):
        already = len(os.listdir(root / "counts"))
        proc = crash_project.start("run", "-j", "2")
        target = min(already + rng.randrange(5, 40), len(JOBS) - 5)
        wait_for(lambda: len(os.listdir(root / "counts")) >= target or proc.poll() is not None,  # noqa: B023
                 timeout=60, what=f"{target} jobs to start")
        time.sleep(rng.uniform(0, 0.02))
        assert proc.poll() is None, f"flow ended before the kill:\n{crash_project.read('flow.err')}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
        assert "another flow run" not in crash_project.read("flow.err")
        recorded, counts = crash_project.recorded_outputs(), _counts(root)
        for count, output in JOBS.items():
            if output in recorded:
                at_recording.setdefault(count, counts[count])
        assert crash_project.integrity() == "ok"
    crash_project.run("-j", "2")
    assert _files(root) == clean_files
    after = _counts(root)
    for count, seen in at_recording.items():
        assert after[count] == seen, f"{JOBS[count]} was recorded as finished, yet ran again"
    assert crash_project.integrity() == "ok"
