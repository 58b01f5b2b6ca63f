"""The ETA of a run (``run.eta``), on graphs built in memory with hand-worked
answers: the longest path through the jobs left or their work over the
slots, whichever is longer; each job estimated from its rule's history, else
from what the run measured; running jobs count what they have left;
up-to-date jobs and those behind a failure never count."""

from __future__ import annotations

from dataclasses import dataclass, field

from flow.engine.run.eta import Estimates, Eta, remaining_seconds


@dataclass(eq=False)
class Rule:
    name: str
    action: object | None = "shell"


@dataclass(eq=False)
class Job:
    id: str
    rule: Rule
    deps: list[Job] = field(default_factory=list)
    threads: int = 1


def chain(rule: Rule, n: int) -> list[Job]:
    jobs: list[Job] = []
    for i in range(n):
        jobs.append(Job(f"{rule.name}{i}", rule, jobs[-1:]))
    return jobs


def fan_out(root: Rule, leaf: Rule, n: int) -> list[Job]:
    top = Job("root", root)
    return [top] + [Job(f"leaf{i}", leaf, [top]) for i in range(n)]


def left(jobs: list[Job], typical: dict[str, float], slots: int, done: set[str] = frozenset(),
         failed: set[str] = frozenset(), running: dict[str, float] | None = None) -> float | None:
    return remaining_seconds(jobs, set(done), set(failed), running or {}, Estimates(typical), slots)


def test_a_chain_takes_the_sum_of_its_jobs_however_many_slots():
    jobs = chain(Rule("step"), 3)
    assert left(jobs, {"step": 2.0}, slots=4) == 6.0  # the path: 2 + 2 + 2; the work over 4 slots is 1.5


def test_a_fan_out_over_two_slots_takes_its_work_over_the_slots():
    jobs = fan_out(Rule("split"), Rule("part"), 4)
    # The path is 1 + 3 = 4 s; the work is 1 + 4 * 3 = 13 s over 2 slots: 6.5 s.
    assert left(jobs, {"split": 1.0, "part": 3.0}, slots=2) == 6.5
    assert left(jobs, {"split": 1.0, "part": 3.0}, slots=8) == 4.0  # enough slots: the path


def test_a_job_takes_as_many_slots_as_its_threads():
    rule = Rule("train")
    jobs = [Job("a", rule, threads=2), Job("b", rule, threads=2), Job("c", rule, threads=8)]
    # 2 s each: 2*2 + 2*2 + 2*4 (c's 8 threads are capped at the 4 slots) = 16 slot-seconds over 4.
    assert left(jobs, {"train": 2.0}, slots=4) == 4.0
    assert left(jobs[:2], {"train": 2.0}, slots=4) == 2.0


def test_a_running_job_counts_what_it_has_left():
    jobs = chain(Rule("step"), 2)
    assert left(jobs, {"step": 2.0}, 4, running={"step0": 1.5}) == 2.5  # 0.5 + 2
    assert left(jobs, {"step": 2.0}, 4, running={"step0": 5.0}) == 2.0  # past its estimate: nothing left


def test_done_and_up_to_date_jobs_do_not_count():
    jobs = chain(Rule("step"), 4)
    assert left(jobs, {"step": 2.0}, 4, done={"step0", "step1"}) == 4.0
    assert left(jobs, {"step": 2.0}, 4, done={j.id for j in jobs}) == 0.0


def test_jobs_behind_a_failure_do_not_count():
    a, b = Rule("a"), Rule("b")
    bad, other = Job("bad", a), Job("other", a)
    jobs = [bad, other, Job("after_bad", b, [bad]), Job("after_other", b, [other])]
    assert left(jobs, {"a": 1.0, "b": 5.0}, 1, failed={"bad"}) == 6.0  # other, then after_other


def test_a_rule_that_only_gathers_takes_nothing_but_passes_the_path_on():
    steps = chain(Rule("step"), 2)
    gather = Job("all", Rule("all", action=None), steps[-1:])
    after = Job("after", Rule("step"), [gather])
    assert left([*steps, gather, after], {"step": 1.0}, 4) == 3.0


def test_a_rule_never_seen_takes_what_the_run_measured():
    new, known = Rule("new"), Rule("known")
    job = Job("n0", new)
    estimates = Estimates({"known": 2.0})
    assert estimates(Job("k0", known)) == 2.0
    assert estimates(job) is None  # nothing known of it yet
    assert remaining_seconds([job], set(), set(), {}, estimates, 1) is None
    estimates.measured("known", 1.0)
    estimates.measured("known", 5.0)
    assert estimates(job) == 3.0  # the mean of every job the run finished
    estimates.measured("new", 7.0)
    assert estimates(job) == 7.0  # the mean of its own rule's
    assert estimates(Job("k1", known)) == 2.0  # the history wins for a rule it knows


def _eta(jobs: list[Job], typical: dict[str, float], slots: int) -> tuple[Eta, list[int]]:
    reads: list[int] = []

    def history() -> dict[str, float]:
        reads.append(1)
        return typical

    return Eta(lambda: jobs, history, slots), reads


def test_the_eta_excludes_up_to_date_jobs_and_reads_the_history_once_when_first_asked():
    step = Rule("step")
    jobs = [Job("a", step), Job("b", step), Job("c", step)]
    eta, reads = _eta(jobs, {"step": 2.0}, 1)
    eta.skipped(jobs[1])
    assert eta.seconds(0.0) is None and reads == []  # still deciding: no estimate yet
    eta.started(jobs[0], 10.0)
    assert eta.seconds(10.0) == 4.0  # a and c, one at a time; b is up to date
    assert eta.seconds(10.5) == 3.5  # counting down between estimates
    assert reads == [1]


def test_the_eta_is_worked_out_again_at_most_once_a_second():
    step = Rule("step")
    jobs = chain(step, 3)
    eta, _ = _eta(jobs, {"step": 2.0}, 4)
    eta.started(jobs[0], 0.0)
    assert eta.seconds(0.0) == 6.0
    eta.finished(jobs[0], 0.2)  # far sooner than expected
    assert eta.seconds(0.5) == 5.5  # the last estimate, counting down
    eta.started(jobs[1], 0.5)
    assert eta.seconds(1.0) == 3.5  # worked out again: step1 has run 0.5 s of 2, then step2


def test_a_wave_of_skips_keeps_the_last_estimate_until_the_scheduler_has_decided():
    step = Rule("step")
    jobs = [Job("a", step), Job("b", step), Job("c", step)]
    eta, _ = _eta(jobs, {"step": 2.0}, 1)
    eta.started(jobs[0], 0.0)
    assert eta.seconds(0.0) == 6.0
    eta.skipped(jobs[1])
    eta.skipped(jobs[2])
    assert eta.seconds(2.0) == 4.0  # deciding: the last estimate stands
    eta.decided()
    assert eta.seconds(2.0) == 0.0  # a has run its 2 s; b and c were up to date


def test_a_retried_job_still_counts_and_one_that_failed_for_good_does_not():
    step = Rule("step")
    jobs = chain(step, 2)
    eta, _ = _eta(jobs, {"step": 2.0}, 1)
    eta.started(jobs[0], 0.0)
    eta.failed_attempt(jobs[0], will_retry=True)
    eta.decided()
    assert eta.seconds(0.0) == 4.0
    eta.failed_attempt(jobs[0], will_retry=False)
    assert eta.seconds(1.0) == 0.0  # step1 waited on it: nothing is left to run
