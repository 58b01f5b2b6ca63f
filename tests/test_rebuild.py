"""The rebuilder on its own, against a temporary directory: why a job runs
(missing, unrecorded, modified, input changed, code changed, ...) or that it
does not, with nothing run: outputs are written and recorded here by hand."""

from __future__ import annotations

import os
import textwrap
import time

import pytest
from flow.engine.decide.hashing import Hasher
from flow.engine.decide.rebuild import Rebuilder
from flow.engine.decide.schema import AttemptRecord
from flow.engine.decide.state import State
from flow.engine.graph.dag import DAG
from flow.engine.graph.job import Job
from flow.engine.load.loader import load
from flow.engine.run.prepare import Preparer

FLOWFILE = """\
rule upper:
    input: "in.txt"
    output: "out.txt"
    params: mode="{mode}"
    shell: "tr a-z A-Z < {input} > {output}"
"""


class World:
    """A Flowfile in a directory, loaded afresh as a run would."""

    def __init__(self, root, mode: str = "fast", command: str = "tr a-z A-Z < {input} > {output}", **rebuilder):
        self.root = root
        (root / "Flowfile").write_text(textwrap.dedent(FLOWFILE.replace("{mode}", mode)
                                                       .replace("tr a-z A-Z < {input} > {output}", command)))
        wf = load("Flowfile")
        self.dag = DAG(wf)
        (self.job,) = [j for j in self.dag.reachable(self.dag.targets([])) if j.rule.name == "upper"]
        self.state = State(".flow")
        self.hasher = Hasher(self.state.files)
        self.rebuilder = Rebuilder(self.state, self.hasher, Preparer(wf), targets={"out.txt"}, **rebuilder)

    def reason(self, job: Job | None = None):
        return self.rebuilder.reason(job or self.job)[0]

    def record(self) -> None:
        """Record the job's outputs as a finished run would."""
        key, parts = self.rebuilder.key(self.job, recorded_hashes=False)
        outputs = [(out, self.hasher.digest(out), False) for out in self.job.outputs]
        now = time.time()
        attempt = AttemptRecord(self.job.id, self.job.rule.name, self.job.wildcards, now, now, 0)
        self.state.record_job(attempt, key, parts, outputs, self.hasher.take_learned())

    def close(self) -> None:
        self.state.close()


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("hello\n")
    made = []

    def make(**kw) -> World:
        if made:
            made[-1].close()
        made.append(World(tmp_path, **kw))
        return made[-1]

    yield make
    made[-1].close()


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def test_a_missing_output_makes_the_job_run(world):
    reason = world().reason()
    assert reason.kind == "missing" and str(reason) == "output out.txt is missing"


def test_a_job_that_must_run_has_its_key_worked_out_for_its_record(world):
    w = world()
    reason, key, parts = w.rebuilder.reason(w.job)
    assert reason.kind == "missing" and key and parts["inputs"] == [["in.txt", parts["inputs"][0][1]]]


def test_without_a_record_to_keep_a_missing_output_decides_without_a_key(world):
    w = world()
    reason, key, parts = w.rebuilder.reason(w.job, keyed=False)
    assert reason.kind == "missing" and (key, parts) == ("", {})


def test_without_a_record_to_keep_the_key_still_decides_a_job_whose_outputs_are_as_made(world):
    w = world()
    _write("out.txt", "HELLO\n")
    w.record()
    _write("in.txt", "changed\n")
    w = world()
    reason, _, _ = w.rebuilder.reason(w.job, keyed=False)
    assert reason.kind == "input" and reason.files == ("in.txt changed",)


def test_an_output_flow_did_not_make_makes_the_job_run(world):
    _write("out.txt", "HELLO\n")
    reason = world().reason()
    assert reason.kind == "unrecorded" and "not made by flow" in str(reason)


def test_a_recorded_output_is_up_to_date_in_the_next_run(world):
    w = world()
    _write("out.txt", "HELLO\n")
    w.record()
    assert world().reason() is None


def test_an_output_changed_outside_flow_makes_the_job_run(world):
    w = world()
    _write("out.txt", "HELLO\n")
    w.record()
    _write("out.txt", "edited by hand\n")
    reason = world().reason()
    assert reason.kind == "modified" and str(reason) == "output out.txt was modified outside flow"


def test_a_changed_input_makes_the_job_run_and_says_which(world):
    w = world()
    _write("out.txt", "HELLO\n")
    w.record()
    _write("in.txt", "goodbye\n")
    reason = world().reason()
    assert reason.kind == "input" and str(reason) == "input in.txt changed"
    assert reason.files == ("in.txt changed",) and reason.paths == ("in.txt",)


def test_an_input_rewritten_with_the_same_bytes_changes_nothing(world):
    w = world()
    _write("out.txt", "HELLO\n")
    w.record()
    _write("in.txt", "hello\n")
    os.utime("in.txt", (time.time() + 5, time.time() + 5))
    assert world().reason() is None


def test_a_changed_command_makes_the_job_run(world):
    w = world()
    _write("out.txt", "HELLO\n")
    w.record()
    reason = world(command="tr a-z A-Z < {input} | rev > {output}").reason()
    assert reason.kind == "code" and str(reason) == "the command changed"


def test_changed_params_make_the_job_run(world):
    w = world()
    _write("out.txt", "HELLO\n")
    w.record()
    reason = world(mode="slow").reason()
    assert reason.kind == "params" and str(reason) == "params changed"


def test_forcing_makes_an_up_to_date_job_run(world):
    w = world()
    _write("out.txt", "HELLO\n")
    w.record()
    assert world(forcerules={"upper"}).reason().kind == "forced"
    assert world(forceall=True).reason().kind == "forced"


def test_the_key_holds_the_action_params_and_input_contents(world):
    w = world()
    key, parts = w.rebuilder.key(w.job)
    assert parts["inputs"] == [["in.txt", w.hasher.digest("in.txt")]]
    assert parts["outputs"] == ["out.txt"]
    w = world()
    assert w.rebuilder.key(w.job)[0] == key
    w = world(command="cat {input} > {output}")
    assert w.rebuilder.key(w.job)[0] != key
    _write("in.txt", "other\n")
    w = world()
    assert w.rebuilder.key(w.job)[0] != key
