"""What the progress of a run says: its total counts the jobs that have
something to run, and its ETA goes at the pace of the jobs that ran."""

from __future__ import annotations

import io
import time

from flow.engine.commands.report import Reporter


def test_the_total_counts_only_jobs_with_an_action(project):
    project.flowfile("""\
        rule all:
            input: "a.txt", "b.txt"

        rule make:
            output: "{x}.txt"
            shell: "echo {wildcards.x} > {output}"
        """)
    r = project.run("-j", "1")
    done = [ln for ln in r.stderr.splitlines() if ln.startswith("done  ")]
    assert done[-1].endswith("[2/2]"), r.stderr


def _reporter(total: int) -> Reporter:
    reporter = Reporter(stream=io.StringIO(), live=False)
    reporter.set_total(total)
    return reporter


def test_the_eta_goes_at_the_pace_of_the_jobs_that_ran(monkeypatch):
    reporter = _reporter(10)
    for _ in range(6):
        reporter.up_to_date()  # six jobs needed nothing, at once
    for name in ("a", "b"):
        reporter.job_started(name, "output is missing", None, None)
        reporter.job_finished(name, 2.0)
    reporter._first_start = time.monotonic() - 4.0  # two jobs ran in 4 s
    assert abs(reporter._eta() - 4.0) < 0.5  # two left, at 2 s each


def test_no_eta_before_two_jobs_have_run():
    reporter = _reporter(10)
    for _ in range(8):
        reporter.up_to_date()
    reporter.start -= 10
    assert reporter._eta() is None
