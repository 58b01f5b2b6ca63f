"""The run history: what every job attempt and every run records in
``.flow/state.db``, the console log kept under ``.flow/logs/``, pruning,
and reading it back (``run.records``)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import pytest
from conftest import Project, processes_in
from flow.engine.errors import UserError
from flow.engine.run.records import Records, parse_since, percentile

MB = 1024 * 1024


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


def rows(p: Project, sql: str) -> list[dict]:
    db = sqlite3.connect(p.root / ".flow/state.db")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql)]
    finally:
        db.close()


def attempts(p: Project) -> list[dict]:
    return rows(p, "SELECT * FROM attempts ORDER BY id")


def runs(p: Project) -> list[dict]:
    return rows(p, "SELECT rowid AS number, * FROM runs ORDER BY rowid")


# what an attempt records ---------------------------------------------------------------


def test_a_job_that_sleeps_half_a_second_records_about_half_a_second(project):
    project.flowfile("""
        rule nap:
            output: "nap.txt"
            shell: "sleep 0.5; echo done > {output}"
    """)
    project.run()
    (a,) = attempts(project)
    assert 0.45 <= a["ended"] - a["started"] < 3.0
    assert a["status"] == 0 and a["attempt"] == 1


def test_a_shell_job_that_allocates_200_mb_records_at_least_that_peak(project):
    project.flowfile("""
        rule big:
            output: "big.txt"
            shell: "python3 -c 'x = bytearray(200 * 1024 * 1024); open(\\"{output}\\", \\"w\\").write(\\"ok\\")'"
    """)
    project.run()
    (a,) = attempts(project)
    assert a["rss_kb"] * 1024 >= 200 * MB
    assert a["cpu"] is not None and a["cpu"] > 0


def test_a_jobs_peak_is_recorded_when_flow_was_started_by_a_bigger_process(project):
    ballast = bytearray(400 * MB)  # this process's peak: flow, started from it, inherits it through its exec
    project.flowfile("""
        rule big:
            output: "big.txt"
            shell: "python3 -c 'x = bytearray(200 * 1024 * 1024); open(\\"{output}\\", \\"w\\").write(\\"ok\\")'"
    """)
    project.run()
    del ballast
    (a,) = attempts(project)
    assert a["rss_kb"] is not None and a["rss_kb"] * 1024 >= 200 * MB


def test_a_run_block_that_allocates_200_mb_records_at_least_that_peak(project):
    project.flowfile("""
        rule big:
            output: "big.txt"
            run:
                x = bytearray(200 * 1024 * 1024)
                open(output[0], "w").write("ok")
    """)
    project.run()
    (a,) = attempts(project)
    assert a["rss_kb"] * 1024 >= 200 * MB


def test_bytes_in_and_out_are_the_sizes_of_the_inputs_and_outputs(project):
    project.write("a.txt", "x" * 1000)
    project.write("b.txt", "y" * 234)
    project.flowfile("""
        rule cat:
            input: "a.txt", "b.txt"
            output: "ab.txt", "twice.txt"
            shell: "cat {input} > {output[0]}; cat {input} {input} > {output[1]}"
    """)
    project.run()
    (a,) = attempts(project)
    assert a["bytes_in"] == 1234
    assert a["bytes_out"] == 1234 + 2468


def test_a_directory_output_counts_the_bytes_of_its_files(project):
    project.flowfile("""
        rule parts:
            output: directory("parts")
            shell: "mkdir -p parts/sub; printf 12345 > parts/a; printf 123 > parts/sub/b"
    """)
    project.run()
    (a,) = attempts(project)
    assert a["bytes_out"] == 8


def test_the_reason_a_job_ran_is_recorded(project):
    project.write("in.txt", "1")
    project.flowfile("""
        rule copy:
            input: "in.txt"
            output: "out.txt"
            shell: "cp {input} {output}"
    """)
    project.run()
    project.write("in.txt", "2")
    project.run()
    first, second = attempts(project)
    assert first["reason"] == "output out.txt is missing"
    assert "in.txt" in second["reason"]


def test_a_retried_job_records_each_attempt_with_its_number_and_status(project):
    project.flowfile("""
        rule flaky:
            output: "out.txt"
            retries: 1
            shell: "if [ -e tried ]; then echo ok > {output}; else touch tried; exit 3; fi"
    """)
    project.run()
    first, second = attempts(project)
    assert (first["attempt"], first["status"]) == (1, 3)
    assert (second["attempt"], second["status"]) == (2, 0)
    assert first["run"] == second["run"] == runs(project)[0]["id"]


def test_a_touched_job_records_no_attempt(project):
    project.write("out.txt", "made by hand")
    project.flowfile("""
        rule make:
            output: "out.txt"
            shell: "echo x > {output}"
    """)
    project.run("--touch")
    assert attempts(project) == []


# what a run records ------------------------------------------------------------------


def test_a_run_records_its_command_targets_counts_and_outcome(project):
    project.flowfile("""
        rule all:
            input: "a.txt", "b.txt"
        rule make:
            output: "{name}.txt"
            shell: "echo {wildcards.name} > {output}"
    """)
    project.run("all", "-j", "2")
    project.run("all")
    first, second = runs(project)
    assert json.loads(first["command"]) == ["flow", "run", "all", "-j", "2"]
    assert json.loads(first["targets"]) == ["all"]
    assert (first["total"], first["ran"], first["failed"], first["up_to_date"]) == (2, 2, 0, 0)
    assert first["outcome"] == "ok" and first["cores"] == 2
    assert first["ended"] >= first["started"]
    assert (second["ran"], second["up_to_date"]) == (0, 2)
    assert second["number"] == first["number"] + 1


def test_a_run_with_a_failed_job_records_the_outcome_failed(project):
    project.flowfile("""
        rule bad:
            output: "out.txt"
            shell: "exit 1"
    """)
    assert project.flow("run").returncode == 1
    (run,) = runs(project)
    assert (run["outcome"], run["failed"]) == ("failed", 1)
    (a,) = attempts(project)
    assert a["status"] == 1


def test_an_interrupted_run_records_the_outcome_interrupted(project):
    assert _slow_run_stopped_by(project, signal.SIGINT) == 130
    (run,) = runs(project)
    assert run["outcome"] == "interrupted"


def test_a_run_killed_with_sigkill_reads_back_as_killed(project):
    _slow_run_stopped_by(project, signal.SIGKILL)
    (run,) = runs(project)
    assert run["outcome"] == "running"  # its row was never completed
    records = Records.open(str(project.root / ".flow"))
    assert records.runs()[0].outcome == "killed"


def _slow_run_stopped_by(p: Project, sig: int) -> int:
    """Start a run whose job sleeps, send its process group ``sig`` once the
    job runs, and give flow's exit status (what it left running is ended)."""
    p.flowfile("""
        rule slow:
            output: "out.txt"
            shell: "sleep 30; touch {output}"
    """)
    proc = p.start("run")
    deadline = time.monotonic() + 30
    while "run   slow" not in ((p.root / "flow.err").read_text() if (p.root / "flow.err").exists() else ""):
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    code = proc.wait(timeout=30)
    for pid in processes_in(p.root):
        os.kill(pid, signal.SIGKILL)
    return code


def test_a_run_keeps_its_console_output_in_a_log_under_dot_flow(project):
    project.flowfile("""
        rule make:
            output: "out.txt"
            shell: "echo x > {output}"
    """)
    project.run()
    (run,) = runs(project)
    log = (project.root / ".flow" / run["log"]).read_text()
    assert "run   make: output out.txt is missing" in log
    assert "echo x > out.txt" in log  # the commands, as -p prints them
    assert "done  make" in log
    assert "flow: 1 job ran" in log


def test_a_dry_run_records_no_run(project):
    project.flowfile("""
        rule make:
            output: "out.txt"
            shell: "echo x > {output}"
    """)
    project.run("-n")
    assert not (project.root / ".flow/state.db").exists() or runs(project) == []


# pruning -------------------------------------------------------------------------------


def test_history_keeps_the_last_flow_history_runs_runs_with_their_attempts_and_logs(project):
    project.flowfile("""
        rule make:
            output: "out.txt"
            shell: "date +%N > {output}"
    """)
    for _ in range(4):
        project.run("-F", env={"FLOW_HISTORY_RUNS": "2"})
    kept = runs(project)
    assert len(kept) == 2
    assert {a["run"] for a in attempts(project)} == {r["id"] for r in kept}
    logs = sorted(os.listdir(project.root / ".flow/logs"))
    assert logs == sorted(os.path.basename(r["log"]) for r in kept)


def test_history_older_than_flow_history_days_is_pruned(project):
    project.flowfile("""
        rule make:
            output: "out.txt"
            shell: "date +%N > {output}"
    """)
    project.run()
    db = sqlite3.connect(project.root / ".flow/state.db")
    with db:
        db.execute("UPDATE runs SET started = started - 10 * 86400")
        db.execute("UPDATE attempts SET started = started - 10 * 86400, ended = ended - 10 * 86400")
    db.close()
    project.run("-F", env={"FLOW_HISTORY_DAYS": "5"})
    assert len(runs(project)) == 1
    assert len(attempts(project)) == 1


def test_a_history_limit_that_is_not_a_positive_number_is_refused(project):
    project.flowfile("""
        rule make:
            output: "out.txt"
            shell: "echo x > {output}"
    """)
    r = project.flow("run", env={"FLOW_HISTORY_RUNS": "lots"})
    assert r.returncode == 2
    assert "FLOW_HISTORY_RUNS=lots" in r.stderr and "whole number" in r.stderr
    assert not project.exists("out.txt")


def test_a_store_of_an_older_flow_gains_the_history_columns(project):
    project.flowfile("""
        rule make:
            output: "out.txt"
            shell: "echo x > {output}"
    """)
    (project.root / ".flow").mkdir()
    db = sqlite3.connect(project.root / ".flow/state.db")
    db.executescript("""
        CREATE TABLE attempts (id INTEGER PRIMARY KEY, job TEXT NOT NULL, rule TEXT NOT NULL,
            wildcards TEXT NOT NULL, started REAL NOT NULL, ended REAL NOT NULL, status INTEGER NOT NULL);
    """)
    now = time.time()
    db.execute("INSERT INTO attempts (job, rule, wildcards, started, ended, status) VALUES ('old', 'old', '{}', ?, ?, 0)",
               (now - 60, now - 59))
    db.commit()
    db.close()
    project.run()
    old, new = attempts(project)
    assert old["run"] is None and old["job"] == "old"
    assert new["run"] == runs(project)[0]["id"] and new["cpu"] is not None


# reading it back -----------------------------------------------------------------------


def test_percentiles_interpolate_between_the_nearest_values():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(4 + 0.8 * 6)  # rank 3.8
    assert percentile(values, 99) == pytest.approx(4 + 0.96 * 6)
    assert percentile([7.0], 99) == 7.0


def _store(tmp_path) -> Records:
    from flow.engine.decide.schema import SCHEMA, add_columns

    db = sqlite3.connect(tmp_path / "state.db")
    db.executescript(SCHEMA)
    add_columns(db)
    return Records(db)


def _attempt(db, rule, seconds, status=0, run="r1", cpu=None, rss=None, b_in=0, b_out=0, ended=1000.0):
    db.execute("INSERT INTO attempts (job, rule, wildcards, started, ended, status, run, attempt, cpu, rss_kb, "
               "bytes_in, bytes_out, reason) VALUES (?,?,'{}',?,?,?,?,1,?,?,?,?,'x')",
               (rule, rule, ended - seconds, ended, status, run, cpu, rss, b_in, b_out))


def test_rule_statistics_match_hand_computed_percentiles(tmp_path):
    records = _store(tmp_path)
    for seconds in (1, 2, 3, 4, 10):
        _attempt(records.db, "fit", seconds, cpu=seconds / 2, rss=100 * seconds, b_in=5, b_out=7)
    _attempt(records.db, "fit", 99, status=1, cpu=1.0, rss=50)
    (stats,) = records.rule_stats()
    assert (stats.runs, stats.failures) == (6, 1)
    assert stats.p50 == pytest.approx(3.0)
    assert stats.p95 == pytest.approx(8.8)
    assert stats.p99 == pytest.approx(9.76)
    assert stats.max == pytest.approx(10.0)
    assert stats.mean_cpu == pytest.approx((0.5 + 1 + 1.5 + 2 + 5 + 1) / 6)
    assert stats.peak_rss_kb == 1000
    assert (stats.bytes_in, stats.bytes_out) == (25, 35)


def test_rule_statistics_since_a_time_leave_out_older_attempts(tmp_path):
    records = _store(tmp_path)
    _attempt(records.db, "fit", 5, ended=100.0)
    _attempt(records.db, "fit", 1, ended=2000.0)
    (stats,) = records.rule_stats(since=1000.0)
    assert stats.runs == 1 and stats.max == pytest.approx(1.0)


def test_typical_seconds_is_the_median_of_a_rules_successful_attempts(tmp_path):
    records = _store(tmp_path)
    for seconds in (1, 2, 30):
        _attempt(records.db, "fit", seconds)
    _attempt(records.db, "fit", 500, status=1)
    assert records.typical_seconds() == {"fit": pytest.approx(2.0)}


def test_a_run_is_found_by_number_by_counting_back_or_by_id_prefix(tmp_path):
    records = _store(tmp_path)
    for run_id in ("aaaa1111", "bbbb2222", "bbbb3333"):
        records.db.execute("INSERT INTO runs (id, started, outcome) VALUES (?, 1, 'ok')", (run_id,))
    assert records.run("1").id == "aaaa1111"
    assert records.run("last").id == "bbbb3333"
    assert records.run("-2").id == "bbbb2222"
    assert records.run("aaaa").id == "aaaa1111"
    with pytest.raises(UserError, match="2 runs"):
        records.run("bbbb")
    with pytest.raises(UserError, match="no such run"):
        records.run("9")


def test_since_reads_spans_and_dates():
    assert parse_since("90m", now=10_000.0) == 10_000.0 - 5400
    assert parse_since("2d", now=200_000.0) == 200_000.0 - 172_800
    assert parse_since("2026-12-01") == time.mktime(time.strptime("2026-12-01", "%Y-%m-%d"))
    with pytest.raises(UserError, match="--since soon"):
        parse_since("soon")


# flow history and flow stats -------------------------------------------------------------

PAIR = """
    rule all:
        input: "a.txt", "b.txt"
    rule make:
        output: "{name}.txt"
        shell: "echo {wildcards.name} > {output}"
"""


def test_flow_history_lists_the_runs_newest_first(project):
    project.flowfile(PAIR)
    project.run()
    project.run()
    r = project.flow("history")
    assert r.returncode == 0, r.output
    header, newest, oldest = r.stdout.splitlines()
    assert header.split()[:3] == ["RUN", "STARTED", "OUTCOME"]
    assert newest.split()[0] == "2" and oldest.split()[0] == "1"
    assert newest.split()[3:7] == ["ok", "0", "0", "2"]  # ran, failed, up to date
    assert oldest.split()[3:7] == ["ok", "2", "0", "0"]


def test_flow_history_json_gives_each_runs_counts_and_outcome(project):
    project.flowfile(PAIR)
    project.run("all")
    (run,) = json.loads(project.flow("history", "--json").stdout)
    assert (run["run"], run["outcome"], run["ran"], run["targets"]) == (1, "ok", 2, ["all"])
    assert run["seconds"] >= 0


def test_flow_history_of_a_run_lists_its_jobs_and_where_its_log_is(project):
    project.flowfile(PAIR)
    project.run()
    r = project.flow("history", "last")
    assert r.returncode == 0, r.output
    assert "make (name=a)" in r.stdout and "make (name=b)" in r.stdout
    log = next(line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.strip().startswith("log:"))
    assert (project.root / log).is_file()
    detail = json.loads(project.flow("history", "1", "--json").stdout)
    assert sorted(j["label"] for j in detail["jobs"]) == ["make (name=a)", "make (name=b)"]
    assert all(j["reason"] == f"output {j['wildcards']['name']}.txt is missing" for j in detail["jobs"])


def test_flow_history_of_an_unknown_run_exits_2_saying_which_runs_there_are(project):
    project.flowfile(PAIR)
    project.run()
    r = project.flow("history", "7")
    assert r.returncode == 2
    assert "run 7: no such run" in r.stderr and "runs 1 to 1" in r.stderr


def test_flow_history_before_any_run_says_none_is_recorded(project):
    project.flowfile(PAIR)
    r = project.flow("history")
    assert r.returncode == 0 and "No run is recorded yet" in r.stdout


def test_flow_stats_json_matches_percentiles_computed_from_the_attempts(project):
    project.flowfile("""
        rule nap:
            output: "out.txt"
            shell: "sleep 0.$(( RANDOM % 3 )); echo > {output}"
    """)
    for _ in range(4):
        project.run("-F")
    (stats,) = json.loads(project.flow("stats", "--json").stdout)
    durations = sorted(a["ended"] - a["started"] for a in attempts(project))
    assert stats["rule"] == "nap" and stats["runs"] == 4 and stats["failures"] == 0
    assert stats["p50"] == pytest.approx((durations[1] + durations[2]) / 2)
    assert stats["p95"] == pytest.approx(durations[2] + 0.85 * (durations[3] - durations[2]))
    assert stats["max"] == pytest.approx(durations[3])


def test_flow_stats_counts_failures_per_rule(project):
    project.flowfile("""
        rule all:
            input: "good.txt", "bad.txt"
        rule good:
            output: "good.txt"
            shell: "echo > {output}"
        rule bad:
            output: "bad.txt"
            shell: "exit 1"
    """)
    project.flow("run", "-k")
    r = project.flow("stats")
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert rows["bad"][1:3] == ["1", "1"] and rows["good"][1:3] == ["1", "0"]


def test_flow_stats_of_a_misspelt_rule_exits_2_with_a_suggestion(project):
    project.flowfile(PAIR)
    project.run()
    r = project.flow("stats", "mkae")
    assert r.returncode == 2 and "Did you mean `make`?" in r.stderr


def test_flow_stats_since_a_span_leaves_out_older_jobs(project):
    project.flowfile(PAIR)
    project.run()
    db = sqlite3.connect(project.root / ".flow/state.db")
    with db:
        db.execute("UPDATE attempts SET started = started - 7200, ended = ended - 7200")
    db.close()
    assert "No job is recorded in that time" in project.flow("stats", "--since", "1h").stdout
    assert json.loads(project.flow("stats", "--since", "3h", "--json").stdout)[0]["runs"] == 2


def test_flow_stats_since_something_that_is_not_a_time_exits_2(project):
    project.flowfile(PAIR)
    r = project.flow("stats", "--since", "yesterdayish")
    assert r.returncode == 2 and "--since yesterdayish" in r.stderr


def test_a_warning_before_the_first_job_is_kept_in_the_runs_log_too(project):
    project.flowfile("""
        rule make:
            output: "out.txt"
            shell: "echo x > {output}"
    """)
    (project.root / ".flow").mkdir()
    (project.root / ".flow/state.db").write_bytes(b"not a database, at all" * 100)
    r = project.run()
    assert "was damaged" in r.stderr
    (run,) = runs(project)
    assert "was damaged" in (project.root / ".flow" / run["log"]).read_text()


# what the review found ---------------------------------------------------------------------


def test_a_small_shell_job_is_not_given_flows_own_memory_as_its_peak(project):
    project.flowfile("""
        rule small:
            output: "out.txt"
            shell: "cp Flowfile {output}"
    """)
    project.run()
    (a,) = attempts(project)
    assert a["rss_kb"] is None or a["rss_kb"] < 20 * 1024  # cp itself needs a few MB; flow has tens


def test_a_pruned_runs_number_finds_no_other_run(tmp_path):
    records = _store(tmp_path)
    for run_id in ("4021f97d", "5bbb2222"):
        records.db.execute("INSERT INTO runs (id, started, outcome) VALUES (?, 1, 'ok')", (run_id,))
    records.db.execute("DELETE FROM runs WHERE id = '4021f97d'")
    with pytest.raises(UserError, match="run 1: no such run"):
        records.run("1")
    with pytest.raises(UserError, match="run 4: no such run"):
        records.run("4")
    assert records.run("5bbb").id == "5bbb2222"


def test_a_run_ended_by_an_error_of_its_own_is_recorded_as_error_and_logged(tmp_path):
    from flow.engine.commands.build import ended_badly
    from flow.engine.commands.report import Reporter
    from flow.engine.decide.state import State
    from flow.engine.run.history import RunRecorder

    state = State(str(tmp_path / ".flow"))
    history = RunRecorder(state, "abcd1234", ["flow", "run"], (), 2)
    stream = history.open_log()
    log = Reporter(stream=stream, plan_stream=stream, live=False)
    ended_badly(history, log, UserError("cannot write .flow/state.db: disk I/O error"))
    stream.close()
    (run,) = Records(state.db).runs()
    assert run.outcome == "error"
    assert "cannot write .flow/state.db" in (tmp_path / ".flow" / run.log).read_text()


def test_a_failed_runs_log_ends_with_what_flow_said_last(project):
    project.flowfile("""
        rule bad:
            output: "out.txt"
            shell: "exit 1"
    """)
    project.flow("run")
    (run,) = runs(project)
    log = (project.root / ".flow" / run["log"]).read_text()
    assert log.rstrip().splitlines()[-1].startswith("flow: 1 job failed (bad)")


def test_a_log_that_cannot_be_written_ends_the_log_not_the_run():
    from flow.engine.run.history import LogFile

    class Full:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    log = LogFile(Full())
    assert log.write("run   a\n") == 0
    log.write("done  a\n")  # (nothing raised: the log has ended)
    assert log.file is None


def test_flow_history_counts_back_with_a_negative_number(project):
    project.flowfile(PAIR)
    project.run()
    project.run()
    r = project.flow("history", "-2")
    assert r.returncode == 0, r.output
    assert r.stdout.startswith("run 1 (")


def test_a_damaged_store_is_a_message_not_a_traceback(project):
    project.flowfile(PAIR)
    (project.root / ".flow").mkdir()
    (project.root / ".flow/state.db").write_bytes(b"\xff" * 8192)
    for command in (["history"], ["stats"]):
        r = project.flow(*command)
        assert r.returncode == 2, r.output
        assert "cannot read .flow/state.db" in r.stderr and "Traceback" not in r.stderr


def test_a_history_limit_of_runs_must_be_a_whole_number(project):
    project.flowfile(PAIR)
    r = project.flow("run", env={"FLOW_HISTORY_RUNS": "0.5"})
    assert r.returncode == 2 and "whole number" in r.stderr


def test_flow_history_reads_the_records_when_the_flowfile_is_broken(project):
    project.flowfile(PAIR)
    project.run()
    project.write("Flowfile", "rule broken:\n    output \"x\"\n")
    r = project.flow("history")
    assert r.returncode == 0, r.output
    assert "warning: the Flowfile does not load" in r.stderr
    assert len(r.stdout.splitlines()) == 2


def test_json_of_a_name_that_is_not_utf8_is_valid_unicode(project):
    project.write("Flowfile", 'NAMES = glob_wildcards("{n}.txt").n\nrule all:\n    input: expand("out/{n}.txt", n=NAMES)\n'
                  'rule copy:\n    input: "{n}.txt"\n    output: "out/{n}.txt"\n    shell: "cp {input} {output}"\n')
    (project.root / os.fsdecode(b"caf\xe9.txt")).write_text("x")
    project.run()
    out = project.flow("history", "last", "--json").stdout
    out.encode("utf-8")  # (a lone surrogate would not encode)
    assert json.loads(out)["jobs"][0]["label"] == "copy (n=caf\\xe9)"


def test_a_job_that_could_not_start_is_in_the_history_as_failed(project):
    project.flowfile("""
        rule bad:
            output: "out.txt"
            shell: "echo {nosuch} > {output}"
    """)
    assert project.flow("run").returncode == 2
    (a,) = attempts(project)
    assert a["status"] == 2 and a["reason"].startswith("could not start: ")
    assert "nosuch" in a["reason"]
    assert json.loads(project.flow("stats", "--json").stdout)[0]["failures"] == 1
