"""The scheduler in memory, as ninja's ``PlanTest`` with its
``FakeCommandRunner``: a fake executor takes the jobs the real scheduler
submits and ends them one at a time when the scheduler waits, writing their
outputs itself, without starting any process. The Flowfile, the DAG, the
rebuilder, the state and the output handling are the real ones, in a
temporary directory."""

from __future__ import annotations

import ast
import os
import textwrap
from pathlib import Path

import pytest
from flow.engine.decide.hashing import Hasher
from flow.engine.decide.rebuild import Reason, Rebuilder
from flow.engine.decide.state import State
from flow.engine.errors import JobsFailed
from flow.engine.graph.dag import DAG
from flow.engine.graph.job import Job
from flow.engine.load.loader import load
from flow.engine.run.events import Observers
from flow.engine.run.executor import Completion, Task
from flow.engine.run.outputs import Outputs
from flow.engine.run.plan import Plan, Ready
from flow.engine.run.prepare import Preparer
from flow.engine.run.scheduler import Options, Scheduler, Summary


class FakeExecutor:
    """The executor protocol (``engine.executor.Executor``) in memory. Each
    ``wait`` ends the job submitted first of those still running (or, with
    ``newest_first``, the last): it writes the job's outputs (``make`` may do
    it differently for a rule), and fails it after that while ``fail`` says so."""

    def __init__(self):
        self.jobs: dict[str, Job] = {}
        self.tasks: list[Task] = []  # every submission, in order
        self.running: list[Task] = []
        self.most = 0  # the most jobs running at once
        self.log: list[tuple[str, str]] = []  # ("start" | "end", job id), in order
        self.fail: dict[str, int] = {}  # job id -> how many more attempts fail
        self.check_fails: set[str] = set()  # jobs whose schema check fails
        self.make: dict[str, callable] = {}  # rule name -> what its job writes
        self.seen_at_start: dict[str, bool] = {}  # path -> whether it existed when its consumer started
        self.watch_at_start: set[str] = set()
        self.newest_first = False
        self.measured: list[str] = []  # jobs named to benchmark(), in order

    @property
    def submitted(self) -> list[str]:
        return [t.job_id for t in self.tasks]

    def submit(self, task: Task) -> None:
        self.tasks.append(task)
        self.running.append(task)
        self.most = max(self.most, len(self.running))
        self.log.append(("start", task.job_id))
        for path in self.watch_at_start:
            self.seen_at_start.setdefault(f"{task.job_id}:{path}", os.path.exists(path))

    def wait(self, timeout: float | None) -> list[Completion]:
        if not self.running:
            return []
        task = self.running.pop(-1 if self.newest_first else 0)
        self.log.append(("end", task.job_id))
        if task.kind == "contracts":
            if task.job_id in self.check_fails:
                return [Completion(task.job_id, False, "output x.csv does not match the schema", 1)]
            return [Completion(task.job_id, True, None, 0)]
        job = self.jobs[task.job_id]
        self.make.get(job.rule.name, _write_outputs)(job)
        if self.fail.get(task.job_id, 0) > 0:  # (having written its outputs, or some)
            self.fail[task.job_id] -= 1
            return [Completion(task.job_id, False, "the command failed (exit status 3)", 3)]
        return [Completion(task.job_id, True, None, 0)]

    def cancel(self, job_id: str) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def hurry(self) -> None:
        pass

    def warm(self, kinds: set[str]) -> None:
        pass

    def benchmark(self, job_id: str) -> None:
        self.measured.append(job_id)


def _write_outputs(job: Job) -> None:
    for out in job.outputs:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        with open(out, "w") as f:
            f.write(f"{job.id}\n")


class Recorder:
    """An observer that keeps every event (``events.RunObserver``)."""

    live = False

    def __init__(self):
        self.events: list[tuple] = []

    def __getattr__(self, name):
        if name.startswith(("run_", "job_", "planned", "proved", "note", "tick")):
            return lambda *args: self.events.append((name, *args))
        raise AttributeError(name)

    def named(self, event: str) -> list[tuple]:
        return [e[1:] for e in self.events if e[0] == event]


class Run:
    """One run of a Flowfile in ``directory``, with the real scheduler and the fake executor."""

    def __init__(self, directory: Path, cores: int = 1, dry_run: bool = False, **options):
        os.chdir(directory)
        self.wf = load("Flowfile")
        self.dag = DAG(self.wf)
        self.targets = self.dag.targets([])
        self.state = State(".flow", readonly=dry_run)
        hasher = Hasher(self.state.files)
        preparer = Preparer(self.wf, cores)
        target_paths = {p for j in self.targets for p in (j.outputs or j.inputs)}
        rebuilder = Rebuilder(self.state, hasher, preparer, targets=target_paths)
        self.executor = None if dry_run else FakeExecutor()
        self.recorder = Recorder()
        events = Observers(self.recorder)
        outputs = Outputs(self.dag, self.state, hasher, preparer, self.executor, events)
        self.plan = Plan(self.dag, target_paths, dry_run=dry_run, release_temps=not options.get("notemp"))
        self.scheduler = Scheduler(self.plan, rebuilder, preparer, outputs, self.executor, events,
                                   Options(cores=cores, dry_run=dry_run, **options))
        if self.executor is not None:
            self.executor.jobs = self.plan.jobs

    def run(self) -> Summary:
        try:
            return self.scheduler.run(self.dag.reachable(self.targets))
        finally:
            self.state.close()


@pytest.fixture
def flow(tmp_path, monkeypatch):
    """``flow(FLOWFILE, **options)``: a ``Run`` of that Flowfile in a fresh directory."""
    monkeypatch.chdir(tmp_path)

    def make(text: str, **options) -> Run:
        (tmp_path / "Flowfile").write_text(textwrap.dedent(text))
        return Run(tmp_path, **options)

    return make


def _starts(executor: FakeExecutor) -> list[str]:
    return [job_id for what, job_id in executor.log if what == "start"]


# the order of ready jobs ------------------------------------------------------------------


ORDER = """\
rule all:
    input: "flat.txt", "urgent.txt", "deep2.txt"

rule flat:
    output: "flat.txt"
    shell: "touch {output}"

rule urgent:
    output: "urgent.txt"
    priority: 5
    shell: "touch {output}"

rule deep1:
    output: "deep1.txt"
    shell: "touch {output}"

rule deep2:
    input: "deep1.txt"
    output: "deep2.txt"
    shell: "touch {output}"
"""


def test_ready_jobs_start_by_priority_then_longest_path_then_age(flow):
    run = flow(ORDER)
    summary = run.run()
    # urgent by priority; deep1 before flat (decided first) by its path of two
    # jobs to the target; flat before deep2 (both one job from it) by age.
    assert run.executor.submitted == ["urgent", "deep1", "flat", "deep2"]
    assert summary.ran == 4 and summary.failed == []


def test_a_plan_of_the_jobs_a_change_reached_counts_the_others_as_done(flow):
    """A plan may hold only some jobs (``Stamp.reach``): a dependency left
    out is done, and the jobs left out count as up to date."""
    run = flow(ORDER)
    run.plan = run.scheduler.plan = Plan(run.dag, proved=(3, 3))  # flat, urgent and deep1: up to date by proof
    run.executor.jobs = run.plan.jobs
    deep2 = run.dag.jobs["deep2"]
    summary = run.scheduler.run([deep2, run.targets[0]])
    run.state.close()
    assert _starts(run.executor) == ["deep2"]
    assert (summary.ran, summary.up_to_date) == (1, 3)
    assert run.recorder.named("run_started") == [(4,)] and run.recorder.named("proved") == [(3,)]


def test_ready_entries_compare_by_priority_depth_and_age_only():
    job = object()
    first = Ready(-5, 0, 3, job, Reason("missing", "x"), "k", {})
    deeper = Ready(0, -2, 2, job, Reason("missing", "x"), "k", {})
    older = Ready(0, -1, 1, job, Reason("missing", "x"), "k", {"unorderable": object()})
    younger = Ready(0, -1, 4, job, Reason("forced", "y"), "other", {})
    assert sorted([younger, older, deeper, first]) == [first, deeper, older, younger]


# -j and --resources --------------------------------------------------------------------


def _many(n: int, threads: int = 1, resources: str = "") -> str:
    res = f"\n    resources: {resources}" if resources else ""
    return f"""\
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))

rule work:
    output: "out/{{i}}.txt"
    threads: {threads}{res}
    shell: "touch {{output}}"
"""


def test_j_bounds_how_many_jobs_run_at_once(flow):
    run = flow(_many(6), cores=3)
    assert run.run().ran == 6
    assert run.executor.most == 3


def test_j_bounds_the_sum_of_threads(flow):
    run = flow(_many(4, threads=2), cores=3)
    assert run.run().ran == 4
    assert run.executor.most == 1  # two jobs of 2 threads do not fit in 3


def test_threads_above_j_are_capped_so_the_job_still_runs(flow):
    run = flow(_many(2, threads=8), cores=2)
    assert run.run().ran == 2
    assert run.executor.most == 1


def test_resources_bound_how_many_jobs_run_at_once(flow):
    run = flow(_many(6, resources="mem=2"), cores=8, resources={"mem": 5})
    assert run.run().ran == 6
    assert run.executor.most == 2


# failures, -k and retries ----------------------------------------------------------------


THREE = """\
rule all:
    input: "a.txt", "b.txt", "c.txt"

rule a:
    output: "a.txt"
    shell: "touch {output}"

rule b:
    output: "b.txt"
    shell: "touch {output}"

rule c:
    output: "c.txt"
    shell: "touch {output}"
"""


def test_a_failure_starts_nothing_new_but_lets_running_jobs_end(flow):
    run = flow(THREE, cores=2)
    run.executor.fail["a"] = 1
    with pytest.raises(JobsFailed) as e:
        run.run()
    assert run.executor.submitted == ["a", "b"]  # c never starts
    summary = e.value.args[0]
    assert summary.failed == ["a"] and summary.ran == 1
    assert summary.blocked == 2  # c, and all
    assert "b.txt" in run.state.outputs and "a.txt" not in run.state.outputs
    assert not os.path.exists("a.txt")  # what the failed attempt wrote is gone
    (error,) = [e for e in run.recorder.named("job_failed")]
    assert error[0].id == "a" and "exit status 3" in error[1] and error[2] is False
    assert "command: touch a.txt" in error[1]  # (a shell job's failure shows its command)


def test_keep_going_starts_the_others_after_a_failure(flow):
    run = flow(THREE, keep_going=True)
    run.executor.fail["a"] = 1
    with pytest.raises(JobsFailed) as e:
        run.run()
    assert run.executor.submitted == ["a", "b", "c"]
    summary = e.value.args[0]
    assert summary.failed == ["a"] and summary.ran == 2 and summary.blocked == 1  # all waits for a


def test_a_failed_attempt_is_retried(flow):
    run = flow("""\
        rule flaky:
            output: "f.txt"
            retries: 2
            shell: "touch {output}"
    """)
    run.executor.fail["flaky"] = 2
    assert run.run().ran == 1
    assert run.executor.submitted == ["flaky"] * 3
    assert [e[2] for e in run.recorder.named("job_failed")] == [True, True]
    assert "f.txt" in run.state.outputs


def test_retries_run_out(flow):
    run = flow("""\
        rule flaky:
            output: "f.txt"
            retries: 1
            shell: "touch {output}"
    """)
    run.executor.fail["flaky"] = 5
    with pytest.raises(JobsFailed):
        run.run()
    assert run.executor.submitted == ["flaky"] * 2
    assert [e[2] for e in run.recorder.named("job_failed")] == [True, False]
    assert not os.path.exists("f.txt")  # what the failed attempt wrote is gone
    assert "f.txt" not in run.state.outputs


def test_a_job_that_does_not_make_its_output_fails(flow):
    run = flow(THREE)
    run.executor.make["b"] = lambda job: None
    with pytest.raises(JobsFailed) as e:
        run.run()
    assert e.value.args[0].failed == ["b"]
    assert "did not make its output b.txt" in run.recorder.named("job_failed")[0][1]


def test_a_job_with_a_benchmark_is_named_to_the_executor_before_it_is_submitted(flow):
    run = flow("""\
        rule all:
            input: "a.txt", "b.txt"

        rule a:
            output: "a.txt"
            benchmark: "bench/a.tsv"
            shell: "touch {output}"

        rule b:
            output: "b.txt"
            shell: "touch {output}"
        """)
    named_then_submitted = []
    submit = run.executor.submit
    run.executor.submit = lambda task: (named_then_submitted.append((task.job_id, list(run.executor.measured))),
                                        submit(task))
    run.run()
    assert dict(named_then_submitted) == {"a": ["a"], "b": ["a"]}


# temp() files ------------------------------------------------------------------------------


TEMP = """\
rule all:
    input: "c1.txt", "c2.txt"

rule make_temp:
    output: temp("t.txt")
    shell: "touch {output}"

rule c1:
    input: "t.txt"
    output: "c1.txt"
    shell: "touch {output}"

rule c2:
    input: "t.txt"
    output: "c2.txt"
    shell: "touch {output}"
"""


def test_a_temp_output_is_deleted_after_its_last_consumer(flow):
    run = flow(TEMP)
    run.executor.watch_at_start = {"t.txt"}
    finished = []
    run.recorder.job_finished = lambda job, seconds: finished.append((job.id, os.path.exists("t.txt")))
    run.run()
    assert run.executor.submitted == ["make_temp", "c1", "c2"]
    assert run.executor.seen_at_start["c2:t.txt"] is True  # not deleted after the first consumer
    assert finished[-1] == ("c2", True)  # still there when the last consumer has ended...
    assert not os.path.exists("t.txt")  # ...and deleted right after
    assert run.state.outputs["t.txt"].temp


def test_notemp_keeps_temp_outputs(flow):
    run = flow(TEMP, notemp=True)
    run.run()
    assert os.path.exists("t.txt")


def test_a_deleted_temp_file_a_job_needs_again_reopens_its_producer(flow, tmp_path):
    flow(TEMP).run()
    os.remove("c2.txt")
    run = Run(tmp_path)
    run.run()
    assert run.executor.submitted == ["make_temp", "c2"]  # the producer runs again first
    assert run.recorder.named("job_reopened")[0][0].id == "make_temp"
    assert not os.path.exists("t.txt")


# checkpoints and gathering ------------------------------------------------------------


CHECKPOINT = """\
rule all:
    input: "result.txt"

checkpoint split:
    output: directory("chunks")
    shell: "split"

rule process:
    input: "chunks/{i}"
    output: "processed/{i}.txt"
    shell: "process"

rule gather:
    input: expand("processed/{i}.txt", i=glob_wildcards("chunks/{i}").i)
    output: "result.txt"
    shell: "gather"
"""


def _split(job: Job) -> None:
    os.makedirs("chunks")
    for i in range(3):
        Path("chunks", str(i)).write_text(f"{i}\n")


def test_a_checkpoint_grows_the_plan_once_it_has_run(flow):
    run = flow(CHECKPOINT, cores=2)
    run.executor.make["split"] = _split
    summary = run.run()
    assert run.recorder.named("run_started") == [(2,)]  # split, gather (all has no action: no step)
    assert run.recorder.named("planned")[-1] == (5,)  # and three process jobs
    assert run.executor.submitted[0] == "split"
    assert sorted(run.executor.submitted[1:4]) == ["process[i=0]", "process[i=1]", "process[i=2]"]
    assert run.executor.submitted[4] == "gather"
    assert summary.ran == 5


def test_a_dry_run_says_what_waits_for_a_checkpoint(flow):
    run = flow(CHECKPOINT, dry_run=True)
    summary = run.run()
    assert [job.id for job, _ in summary.would_run] == ["split"]
    ((job, checkpoint),) = run.recorder.named("job_undetermined")
    assert job.id == "gather" and checkpoint.id == "split"


def test_a_gathering_job_starts_only_after_its_last_producer_has_ended(flow):
    run = flow(_many(4), cores=8)
    run.executor.newest_first = True
    run.run()
    log = run.executor.log
    ends = [i for i, (what, job_id) in enumerate(log) if what == "end" and job_id.startswith("work")]
    assert [what for what, _ in log[:4]] == ["start"] * 4  # the producers run side by side
    assert "all" not in run.executor.submitted  # (a rule without action runs nothing)
    assert run.recorder.named("job_skipped")[-1][0].id == "all"
    gather_done = [i for i, e in enumerate(run.recorder.events) if e[0] == "job_skipped" and e[1].id == "all"][0]
    last_finished = [i for i, e in enumerate(run.recorder.events) if e[0] == "job_finished"][-1]
    assert gather_done > last_finished and len(ends) == 4


def test_a_gathering_rule_with_an_action_is_submitted_after_its_last_producer(flow):
    run = flow("""\
        rule total:
            input: expand("out/{i}.txt", i=range(3))
            output: "total.txt"
            shell: "cat {input} > {output}"

        rule work:
            output: "out/{i}.txt"
            shell: "touch {output}"
    """, cores=4)
    run.executor.newest_first = True
    run.run()
    log = run.executor.log
    start = log.index(("start", "total"))
    assert [e for e in log[:start] if e[0] == "end"] == [("end", f"work[i={i}]") for i in (2, 1, 0)]


# what a run says, and what it records -----------------------------------------------------


def test_a_second_run_submits_nothing_and_says_every_job_is_up_to_date(flow, tmp_path):
    flow(THREE).run()
    run = Run(tmp_path)
    summary = run.run()
    assert run.executor.submitted == []
    assert {job.id for job, reason, command in run.recorder.named("job_skipped")} == {"a", "b", "c", "all"}
    assert all(reason is None for _, reason, _ in run.recorder.named("job_skipped"))
    assert summary.up_to_date == 3 and summary.ran == 0


def test_events_of_a_run_in_order(flow):
    run = flow("""\
        rule one:
            output: "one.txt"
            message: "making {output}"
            shell: "touch {output}"
    """)
    run.run()
    names = [e[0] for e in run.recorder.events]
    assert names == ["run_started", "job_started", "job_finished", "tick", "run_ended"]
    _, job, reason, command, message = run.recorder.events[1]
    assert job.id == "one" and reason.kind == "missing" and command == "touch one.txt"
    assert message == "making one.txt"
    assert isinstance(run.recorder.events[-1][1], Summary)


def test_a_schema_check_is_a_second_step_before_the_job_counts_as_done(flow):
    run = flow("""\
        rule table:
            output: "x.csv"
            schema: {"n": "int64"}
            shell: "touch {output}"
    """)
    recorded_when_checked = []
    submit = run.executor.submit

    def submit_and_look(task):
        if task.kind == "contracts":
            recorded_when_checked.append("x.csv" in run.state.outputs)
        submit(task)

    run.executor.submit = submit_and_look
    assert run.run().ran == 1
    assert [t.kind for t in run.executor.tasks] == ["shell", "contracts"]
    assert run.executor.tasks[1].payload[0] == ["x.csv"]
    assert recorded_when_checked == [False] and "x.csv" in run.state.outputs


def test_a_broken_schema_fails_the_job_without_a_retry(flow):
    run = flow("""\
        rule table:
            output: "x.csv"
            schema: {"n": "int64"}
            retries: 3
            shell: "touch {output}"
    """)
    run.executor.check_fails.add("table")
    with pytest.raises(JobsFailed):
        run.run()
    assert [t.kind for t in run.executor.tasks] == ["shell", "contracts"]
    assert "does not match the schema" in run.recorder.named("job_failed")[0][1]
    assert not os.path.exists("x.csv") and "x.csv" not in run.state.outputs


def test_the_scheduler_knows_no_terminal():
    source = Path(__file__).resolve().parent.parent / "engine" / "run" / "scheduler.py"
    imported = {node.module for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, ast.ImportFrom)}
    assert "report" not in imported and "cli" not in imported
