"""The run's events for other tools (``--log-format json``, ``--events
FILE``): JSON lines checked against the events and fields that
docs/events.md documents, whose tables this file reads, so that the
documentation and the stream cannot drift apart."""

from __future__ import annotations

import io
import json
import os
import re
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import Project, wait_for
from flow.engine.decide.rebuild import Reason
from flow.engine.errors import JobsFailed
from flow.engine.run import stream as stream_module
from flow.engine.run.scheduler import Summary
from flow.engine.run.stream import EventStream

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"
GENERAL = ("Every event", "Every job event", "A reason")


def _documented() -> dict[str, dict[str, str]]:
    """Each ``###`` section's table in docs/events.md: field -> type."""
    tables: dict[str, dict[str, str]] = {}
    heading = None
    for line in DOC.read_text().splitlines():
        if line.startswith("### "):
            heading = line[4:].strip().strip("`")
            tables[heading] = {}
        elif heading is not None and line.startswith("| `"):
            field, type_name = (cell.strip() for cell in line.strip("|").split("|")[:2])
            tables[heading][field.strip("`")] = type_name
    return tables


DOCUMENTED = _documented()
EVENTS = [name for name in DOCUMENTED if name not in GENERAL]

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array of strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
}


def _has_type(value, type_name: str) -> bool:
    if type_name.endswith(" or null"):
        return value is None or _has_type(value, type_name.removesuffix(" or null"))
    return _TYPES[type_name](value)


def _check_fields(record: dict, fields: dict[str, str], what: str) -> None:
    assert set(record) == set(fields), f"{what}: fields {sorted(record)}, documented {sorted(fields)}"
    for name, type_name in fields.items():
        assert _has_type(record[name], type_name), f"{what}: {name}={record[name]!r} is not {type_name}"


def _check(event: dict) -> None:
    """``event`` has exactly the fields docs/events.md lists for it, each of its type."""
    name = event.get("event")
    assert name in EVENTS, f"undocumented event {name!r}"
    fields = {**DOCUMENTED["Every event"], **DOCUMENTED[name]}
    if name.startswith("job_"):
        fields.update(DOCUMENTED["Every job event"])
    _check_fields(event, fields, name)
    if isinstance(event.get("reason"), dict):
        _check_fields(event["reason"], DOCUMENTED["A reason"], f"{name}'s reason")
    if "wildcards" in event:
        assert all(isinstance(v, str) for v in event["wildcards"].values()), event


def _events(text: str) -> list[dict]:
    """Every line of ``text`` as a JSON event, checked against the documentation."""
    events = []
    for line in text.splitlines():
        event = json.loads(line)
        _check(event)
        events.append(event)
    return events


def _named(events: list[dict], name: str) -> list[dict]:
    return [e for e in events if e["event"] == name]


TWO_JOBS = """\
    rule all:
        input: "a.txt", "b.txt"

    rule make:
        output: "{x}.txt"
        shell: "echo {wildcards.x} > {output}"
    """


def _project(root: Path, flowfile: str) -> Project:
    root.mkdir()
    project = Project(root)
    project.flowfile(flowfile)
    return project


# ---------------------------------------------------------------------- the documentation


def test_the_documentation_lists_every_event_the_stream_can_write():
    assert EVENTS == ["run_started", "planned", "job_started", "job_finished", "job_failed", "job_skipped",
                      "job_undetermined", "job_reopened", "note", "progress", "run_finished"]
    for table in DOCUMENTED.values():
        for type_name in table.values():
            assert type_name.removesuffix(" or null") in _TYPES, type_name


def test_every_documented_event_appears_with_its_documented_fields(tmp_path):
    seen: list[dict] = []
    checkpoint = _project(tmp_path / "checkpoint", """\
        rule all:
            input: "done.txt"

        checkpoint split:
            output: directory("parts")
            shell: "mkdir -p parts; echo 1 > parts/p1.txt; echo 2 > parts/p2.txt"

        rule process:
            input: "parts/{p}.txt"
            output: "proc/{p}.txt"
            shell: "cat {input} > {output}"

        def processed(wildcards):
            d = checkpoints.split.get().output[0]
            return expand("proc/{p}.txt", p=glob_wildcards(d + "/{p}.txt").p)

        rule gather:
            input: processed
            output: "done.txt"
            shell: "cat {input} > {output}"
        """)
    seen += _events(checkpoint.run("-n", "--log-format", "json").stdout)  # job_undetermined
    seen += _events(checkpoint.run("--log-format", "json").stdout)  # planned
    seen += _events(checkpoint.run("-F", "--touch", "--log-format", "json").stdout)  # note
    temp = _project(tmp_path / "temp", """\
        rule all:
            input: "b.txt"

        rule a:
            output: temp("t.txt")
            shell: "echo t > {output}"

        rule b:
            input: "t.txt"
            output: "b.txt"
            shell: "cat {input} > {output}"

        rule bad:
            output: "bad.txt"
            retries: 1
            shell: "exit 3"
        """)
    temp.run("-q")
    os.remove(temp.root / "b.txt")
    seen += _events(temp.run("--log-format", "json").stdout)  # job_reopened
    seen += _events(temp.flow("run", "bad.txt", "--log-format", "json").stdout)  # job_failed
    assert sorted({e["event"] for e in seen}) == sorted(EVENTS)
    assert {e["reason"] is None for e in _named(seen, "job_skipped")} == {True, False}


# ---------------------------------------------------------------------- flow run --log-format json


def test_every_line_on_stdout_is_an_event_even_what_a_job_prints(project):
    project.flowfile("""\
        rule make:
            output: "a.txt"
            shell: "echo not json; echo a > {output}"
        """)
    r = project.run("--log-format", "json")
    events = _events(r.stdout)
    assert [e["event"] for e in events][0] == "run_started"
    assert "not json" in r.stderr, r.stderr  # (a job's stdout goes to stderr meanwhile)


def test_json_mode_keeps_the_terminal_quiet_but_for_the_summary(project):
    project.flowfile(TWO_JOBS)
    r = project.run("--log-format", "json")
    assert r.stderr.splitlines() and all(ln.startswith("flow: 2 jobs ran") for ln in r.stderr.splitlines()), r.stderr


def test_job_started_carries_the_reason_the_job_runs(project):
    project.flowfile("""\
        rule copy:
            input: "in.txt"
            output: "out.txt"
            shell: "cp {input} {output}"
        """)
    project.write("in.txt", "1\n")
    first = _named(_events(project.run("--log-format", "json").stdout), "job_started")
    assert [e["reason"]["kind"] for e in first] == ["missing"]
    assert first[0]["job"] == "copy" and first[0]["command"] == "cp in.txt out.txt" and first[0]["outputs"] == ["out.txt"]
    project.write("in.txt", "2\n")
    again = _named(_events(project.run("--log-format", "json").stdout), "job_started")
    assert [e["reason"]["kind"] for e in again] == ["input"]
    assert again[0]["reason"]["paths"] == ["in.txt"], again


def test_job_events_name_the_job_its_rule_and_wildcards(project):
    project.flowfile(TWO_JOBS)
    finished = _named(_events(project.run("-j", "1", "--log-format", "json").stdout), "job_finished")
    assert sorted((e["job"], e["label"], e["rule"], e["wildcards"]["x"]) for e in finished) == [
        ("make[x=a]", "make (x=a)", "make", "a"), ("make[x=b]", "make (x=b)", "make", "b")]


def test_a_failing_job_gives_job_failed_with_its_error_and_a_failed_outcome(project):
    project.flowfile("""\
        rule bad:
            output: "bad.txt"
            shell: "echo oops >&2; exit 3"
        """)
    r = project.flow("run", "--log-format", "json")
    assert r.returncode == 1, r.output
    events = _events(r.stdout)
    (failed,) = _named(events, "job_failed")
    assert failed["job"] == "bad" and failed["will_retry"] is False
    assert "exit status 3" in failed["error"] and "oops" in failed["error"], failed
    assert events[-1]["event"] == "run_finished"
    assert events[-1]["outcome"] == "failed" and events[-1]["failed"] == ["bad"], events[-1]
    assert "1 job failed" in events[-1]["error"]


def test_a_retried_job_fails_with_will_retry_then_starts_again(project):
    project.flowfile("""\
        rule flaky:
            output: "out.txt"
            retries: 1
            shell: "if [ -e tried ]; then echo ok > {output}; else touch tried; exit 1; fi"
        """)
    events = _events(project.run("--log-format", "json").stdout)
    assert [e["event"] for e in events if e["event"].startswith("job_")] == [
        "job_started", "job_failed", "job_started", "job_finished"]
    assert _named(events, "job_failed")[0]["will_retry"] is True
    assert events[-1]["outcome"] == "ok"


def test_a_second_run_skips_its_jobs_as_up_to_date(project):
    project.flowfile(TWO_JOBS)
    project.run("-q")
    events = _events(project.run("--log-format", "json").stdout)
    assert not _named(events, "job_started")
    skipped = _named(events, "job_skipped")
    assert sorted(e["job"] for e in skipped) == ["all", "make[x=a]", "make[x=b]"]
    assert all(e["reason"] is None and e["command"] is None for e in skipped)
    assert events[-1]["up_to_date"] == 2 and events[-1]["ran"] == 0


def test_progress_follows_each_job_end_with_its_counts(project):
    project.flowfile(TWO_JOBS)
    events = _events(project.run("-j", "1", "--log-format", "json").stdout)
    progress = _named(events, "progress")
    assert progress[-1] == {**progress[-1], "done": 2, "total": 2, "ran": 2, "failed": 0, "running": 0}
    after = [events[i + 1]["event"] for i, e in enumerate(events) if e["event"] == "job_finished"]
    assert after == ["progress", "progress"]


def test_every_line_of_a_run_carries_the_run_id_its_jobs_see(project):
    project.flowfile("""\
        rule env:
            output: "id.txt"
            shell: "echo $FLOW_RUN_ID > {output}"
        """)
    events = _events(project.run("--log-format", "json").stdout)
    assert {e["run"] for e in events} == {project.read("id.txt").strip()}


def test_a_dry_run_in_json_mode_gives_skipped_events_with_reasons_not_plan_lines(project):
    project.flowfile(TWO_JOBS)
    r = project.run("-n", "--log-format", "json")
    events = _events(r.stdout)  # (a plan line would not parse)
    assert events[0]["dry_run"] is True
    would = [e for e in _named(events, "job_skipped") if e["reason"] is not None]
    assert sorted((e["job"], e["reason"]["kind"]) for e in would) == [("make[x=a]", "missing"), ("make[x=b]", "missing")]
    assert would[0]["command"].startswith("echo ")
    assert events[-1]["would_run"] == 2 and events[-1]["outcome"] == "ok"
    assert "would run" not in r.stdout + r.stderr.replace("flow: would run 2 jobs", "")
    assert not project.exists("a.txt")


def test_a_flowfile_error_still_ends_the_stream_with_run_finished(project):
    project.flowfile("rule broken:\n    output: \n")
    r = project.flow("run", "--log-format", "json")
    assert r.returncode == 2, r.output
    (only,) = _events(r.stdout)
    assert only["event"] == "run_finished" and only["outcome"] == "error"
    assert "Flowfile" in only["error"], only


def test_an_interrupted_run_ends_its_stream_with_run_finished(project):
    project.flowfile("""\
        rule slow:
            output: "slow.txt"
            shell: "sleep 30; touch {output}"
        """)
    proc = project.start("run", "--events", "events.jsonl")
    wait_for(lambda: project.exists("events.jsonl") and "job_started" in project.read("events.jsonl"),
             what="the job to start")
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=15) == 130, project.read("flow.err")
    events = _events(project.read("events.jsonl"))
    assert events[-1]["event"] == "run_finished" and events[-1]["outcome"] == "interrupted", events[-1]
    assert "SIGINT" in events[-1]["error"]


# ---------------------------------------------------------------------- --events FILE


def _timeless(text: str) -> str:
    return re.sub(r"\(\d+\.\d+s\)", "(Ts)", text)


def test_events_file_is_appended_while_the_terminal_output_stays_as_it_is(tmp_path):
    plain = _project(tmp_path / "plain", TWO_JOBS)
    streamed = _project(tmp_path / "streamed", TWO_JOBS)
    expected = plain.run("-j", "1")
    for _ in range(2):
        r = streamed.run("-j", "1", "--events", "events.jsonl")
        assert (r.stdout, _timeless(r.stderr)) == (expected.stdout, _timeless(expected.stderr))
        expected = plain.run("-j", "1")  # (the second run: nothing to do)
    events = _events(streamed.read("events.jsonl"))
    starts, ends = _named(events, "run_started"), _named(events, "run_finished")
    assert len(starts) == len(ends) == 2 and events[-1] is ends[1]
    assert starts[0]["run"] != starts[1]["run"]
    assert [e["ran"] for e in ends] == [2, 0]


def test_events_to_stdout_with_a_dash(project):
    project.flowfile(TWO_JOBS)
    r = project.run("--events", "-")
    assert _events(r.stdout)[-1]["event"] == "run_finished"
    assert "flow: 2 jobs ran" in r.stderr


def test_an_events_file_that_cannot_be_opened_exits_2_naming_it(project):
    project.flowfile(TWO_JOBS)
    r = project.flow("run", "--events", "no/such/dir/events.jsonl")
    assert r.returncode == 2, r.output
    assert "--events no/such/dir/events.jsonl" in r.stderr and "No such file or directory" in r.stderr, r.stderr
    assert not project.exists("a.txt")  # (refused before anything ran)


# ---------------------------------------------------------------------- the observer itself


def _job(name: str, action: bool = True, **wildcards: str):
    rule = SimpleNamespace(name=name, action=object() if action else None)
    label = f"{name} ({', '.join(f'{k}={v}' for k, v in wildcards.items())})" if wildcards else name
    return SimpleNamespace(id=name + (f"[{','.join(f'{k}={v}' for k, v in wildcards.items())}]" if wildcards else ""),
                           label=label, rule=rule, wildcards=wildcards, outputs=[f"{name}.txt"])


class _Memory(io.BytesIO):
    """An output the stream writes to and closes, still readable after."""

    def close(self) -> None:
        pass


def _lines(out: io.BytesIO) -> list[dict]:
    return _events(out.getvalue().decode("ascii"))


def test_the_observer_fed_directly_writes_each_event_as_documented():
    out = _Memory()
    make, gather = _job("make", x="1"), _job("all", action=False)
    stream = EventStream([("memory", out)])
    reason = Reason("input", "input in.txt changed", ("in.txt changed",), ("in.txt",))
    with pytest.raises(JobsFailed), stream:
        stream.run_started(2)
        stream.planned(3)
        stream.job_started(make, reason, "cmd", "a message")
        stream.job_failed(make, "it failed", will_retry=True)
        stream.job_started(make, reason, "cmd", None)
        stream.job_finished(make, 0.5)
        stream.job_skipped(gather, None, None)
        stream.job_undetermined(_job("late"), make)
        stream.job_reopened(make)
        stream.note("warning: something")
        stream.run_ended(Summary(ran=1, failed=["x"]))
        raise JobsFailed(Summary(failed=["x"]))
    events = _lines(out)
    assert [e["event"] for e in events] == [
        "run_started", "planned", "job_started", "job_failed", "progress", "job_started", "job_finished",
        "progress", "job_skipped", "job_undetermined", "job_reopened", "note", "run_finished"]
    assert events[2]["reason"] == {"kind": "input", "detail": "input in.txt changed",
                                   "files": ["in.txt changed"], "paths": ["in.txt"]}
    assert events[2]["message"] == "a message" and events[5]["message"] is None
    assert events[7] == {**events[7], "done": 1, "total": 3, "ran": 1, "running": 0}
    assert events[-1] == {**events[-1], "outcome": "failed", "ran": 1, "failed": ["x"]}
    assert len({e["run"] for e in events}) == 1
    assert out.getvalue().count(b"\n") == len(events)  # one compact line each


def test_progress_on_tick_comes_at_most_once_a_second(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(stream_module.time, "monotonic", lambda: now[0])
    out = _Memory()
    stream = EventStream([("memory", out)])
    stream.run_started(1)
    for _ in range(4):  # four ticks within 0.6 s
        stream.tick()
        now[0] += 0.2
    now[0] += 1.0
    stream.tick()
    assert [e["event"] for e in _lines(out)] == ["run_started", "progress", "progress"]


def test_a_name_with_undecodable_bytes_is_written_escaped():
    out = _Memory()
    name = os.fsdecode(b"caf\xe9")  # (not UTF-8: Python keeps the byte as a surrogate)
    stream = EventStream([("memory", out)])
    stream.job_skipped(_job("make", x=name), None, None)
    stream.note("odd \ud800 text")
    skipped, note = _lines(out)
    assert skipped["wildcards"] == {"x": "caf\\xe9"} and skipped["label"] == "make (x=caf\\xe9)"
    assert note["text"] == "odd \\ud800 text"


def test_the_stream_ends_with_run_finished_when_the_build_stops_before_its_run():
    out = _Memory()
    with pytest.raises(KeyboardInterrupt), EventStream([("memory", out)]):
        raise KeyboardInterrupt  # (Ctrl-C while the Flowfile loads: no run began)
    (only,) = _lines(out)
    assert only["outcome"] == "interrupted" and only["ran"] == 0 and only["error"] == "flow: interrupted"
