"""The stamp (``engine/decide/stamp.py``): a run after which every job is up
to date leaves one; the next run it still holds for decides nothing, and
one it holds for in part decides only the jobs whose files changed. It
never changes a decision: each test here is a change the stamp must see,
and ``test_graph_cache.py`` runs random edits with and without it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from conftest import FLOW
from flow.engine.commands.build import RunOptions, build
from flow.engine.decide import stamp as stamp_module
from flow.engine.decide.rebuild import Rebuilder
from flow.engine.decide.state import State

FLOWFILE = """\
    configfile: "config.yaml"
    NAMES = sorted(glob_wildcards("src/{n}.txt").n)

    rule all:
        input: "total.txt", "extras.txt"

    def extras(wildcards):
        return expand("extra/{e}.txt", e=glob_wildcards("extra/{e}.txt").e)

    rule extras:
        input: extras
        output: "extras.txt"
        shell: "cat {input} > {output}"

    rule total:
        input: expand("up/{n}.txt", n=NAMES)
        output: "total.txt"
        shell: "cat {input} > {output}"

    rule up:
        input: "src/{n}.txt"
        output: "up/{n}.txt"
        log: "logs/{n}.log"
        params: tag=config["tag"]
        script: "scripts/up.py"
    """
SCRIPT = ("text = open(snakemake.input[0]).read().upper() + snakemake.params.tag\n"
          "open(snakemake.output[0], 'w').write(text)\nopen(snakemake.log[0], 'w').write('ok')\n")


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "Flowfile").write_text(textwrap.dedent(FLOWFILE))
    (tmp_path / "config.yaml").write_text("tag: one\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "up.py").write_text(SCRIPT)
    (tmp_path / "src").mkdir()
    for name in "abc":
        (tmp_path / "src" / f"{name}.txt").write_text(f"{name}\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "one.txt").write_text("one\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(**options):
    """One build in the current directory, in this process: what it found."""
    return build(RunOptions(quiet=True, **options), freeze=False, summary_line=False)


def decided(monkeypatch) -> list[str]:
    """The ids of the jobs the rebuilder decides from now on, looking at
    their files (the stamp vouches for the others)."""
    seen: list[str] = []
    real = Rebuilder._settled
    monkeypatch.setattr(Rebuilder, "_settled", lambda self, job: seen.append(job.id) or real(self, job))
    return seen


def later() -> None:
    """Let the clock move past the timestamps of what was just written."""
    time.sleep(0.05)


def test_a_run_after_which_all_is_up_to_date_leaves_a_stamp(project):
    assert run().summary.ran == 5
    assert (project / ".flow" / stamp_module.FILE).exists()


def test_a_run_the_stamp_holds_for_decides_no_job_and_infers_no_graph(project, monkeypatch):
    run()
    seen = decided(monkeypatch)
    result = run()
    assert result.summary.ran == 0 and result.summary.up_to_date == 5
    assert result.dag is None and seen == []


def test_a_dry_run_the_stamp_holds_for_says_what_a_deciding_one_says(project):
    run()
    text = subprocess.run([*FLOW, "run", "-n"], capture_output=True, text=True, check=True).stderr
    uncached = subprocess.run([*FLOW, "run", "-n", "--no-graph-cache"], capture_output=True, text=True,
                              check=True).stderr
    assert text == uncached == "flow: would run 0 jobs, 5 up to date\n"


def test_a_changed_source_is_seen_and_only_the_jobs_around_it_are_decided(project, monkeypatch):
    run()
    later()
    (project / "src" / "b.txt").write_text("bee\n")
    seen = decided(monkeypatch)
    result = run()
    assert result.summary.ran == 2  # up[b] and total
    assert sorted(seen) == ["all", "total", "up[n=b]"]
    assert (project / "total.txt").read_text() == "A\noneBEE\noneC\none"


def test_a_touched_source_is_hashed_again_and_nothing_runs(project, monkeypatch):
    run()
    later()
    os.utime(project / "src" / "a.txt")
    seen = decided(monkeypatch)
    assert run().summary.ran == 0
    assert "up[n=a]" in seen and "up[n=c]" not in seen
    assert run().dag is None  # (the next stamp has the new signature)


@pytest.mark.parametrize("change", ["output deleted", "output rewritten", "log deleted", "script edited",
                                    "config edited", "source added", "record forgotten",
                                    "found by an input function"])
def test_every_change_a_decision_reads_is_seen(project, change):
    run()
    later()
    if change == "output deleted":
        (project / "up" / "a.txt").unlink()
    elif change == "output rewritten":
        (project / "up" / "a.txt").write_text("by hand\n")
    elif change == "log deleted":
        (project / "logs" / "a.log").unlink()
    elif change == "script edited":
        (project / "scripts" / "up.py").write_text(SCRIPT.replace("upper()", "lower()"))
    elif change == "config edited":
        (project / "config.yaml").write_text("tag: two\n")
    elif change == "source added":
        (project / "src" / "d.txt").write_text("d\n")
    elif change == "found by an input function":
        (project / "extra" / "two.txt").write_text("two\n")
    else:  # an output record gone (as `flow clean` leaves it), the file still there
        state = State(".flow")
        state.forget_outputs(["up/a.txt"])
        state.close()
    # (an output made again with the same bytes leaves total up to date)
    expected = {"output deleted": 1, "output rewritten": 1, "log deleted": 1, "script edited": 4,
                "config edited": 4, "source added": 2, "record forgotten": 1,
                "found by an input function": 1}[change]
    result = run()
    assert result.dag is not None and result.summary.ran == expected
    assert run().summary.ran == 0


@pytest.mark.parametrize("options", [{"forceall": True}, {"forcerun": ("up",)}, {"touch": True},
                                     {"targets": ("up/a.txt",)}, {"rerun_triggers": frozenset({"content"})}])
def test_a_run_with_other_options_or_targets_is_not_proved_by_the_stamp(project, options):
    run()
    assert run(**options).dag is not None


def test_a_workflow_with_temp_files_leaves_no_stamp(project):
    flowfile = (project / "Flowfile").read_text().replace('output: "up/{n}.txt"', 'output: temp("up/{n}.txt")')
    (project / "Flowfile").write_text(flowfile)
    run()
    assert not (project / ".flow" / stamp_module.FILE).exists()
    assert run().dag is not None


def test_a_run_that_fails_leaves_no_stamp(project):
    (project / "scripts" / "up.py").write_text("raise SystemExit(1)\n")
    with pytest.raises(Exception):  # noqa: B017 - JobsFailed, whatever its message
        run()
    assert not (project / ".flow" / stamp_module.FILE).exists()


def test_a_dry_run_leaves_no_stamp(project):
    run(dry_run=True)
    assert not (project / ".flow" / "stamp").exists()


def test_every_write_of_an_output_record_changes_the_store_mark_even_by_plain_sql(tmp_path):
    state = State(str(tmp_path))
    first = state.mark()
    assert first is not None and State(str(tmp_path)).mark() == first  # (opening changes nothing)
    state.forget_outputs(["nothing"])
    assert state.mark() == first  # (no record changed)
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("INSERT INTO outputs (path, job, key, hash, temp) VALUES ('x', 'j', 'k', 'h', 0)")
    db.commit()
    second = state.mark()
    assert second != first
    db.execute("UPDATE outputs SET key = 'k2'")
    db.commit()
    assert state.mark() not in (first, second)
    state.close()
    db.close()


def test_a_stamp_of_another_store_is_not_used(project):
    """A store replaced (moved aside when damaged, deleted) has another mark."""
    run()
    (project / ".flow" / "state.db").unlink()
    result = run()
    assert result.dag is not None and result.summary.ran == 5  # (its outputs are not recorded now)


def test_a_source_gone_between_inferring_and_deciding_leaves_no_stamp(project, monkeypatch):
    """The graph was inferred with it and the run decided without it: a
    stamp of that would vouch for a graph no run could infer now."""
    flowfile = (project / "Flowfile").read_text().replace('input: "total.txt", "extras.txt"',
                                                          'input: "total.txt", "extras.txt", "notes.txt"')
    (project / "Flowfile").write_text(flowfile)
    (project / "notes.txt").write_text("notes\n")
    real = Rebuilder.reason
    with monkeypatch.context() as patch:
        patch.setattr(Rebuilder, "reason", lambda self, job, **kw: (
            (project / "notes.txt").unlink(missing_ok=True), real(self, job, **kw))[1])
        run()
    with pytest.raises(Exception, match="notes.txt"):
        run()


def test_a_file_edited_while_the_stamp_vouched_with_it_is_not_vouched_for_again(project, monkeypatch):
    """up[a] is vouched for from src/a.txt's signature at the start; the file
    is then edited and a later job hashes its new content: the next stamp
    must not say up[a] is up to date with that content."""
    flowfile = (project / "Flowfile").read_text().replace(
        'input: "total.txt", "extras.txt"', 'input: "total.txt", "extras.txt", "late.txt"') + textwrap.dedent("""
        rule late:
            input: "extras.txt", "src/a.txt"
            output: "late.txt"
            shell: "cat {input} > {output}"
        """)
    (project / "Flowfile").write_text(flowfile)
    run()
    later()
    (project / "extra" / "one.txt").write_text("ONE\n")  # (extras and late run; up[a] is vouched for)
    real = Rebuilder.reason

    def edit_before_late(self, job, **kw):
        if job.rule.name == "late":
            (project / "src" / "a.txt").write_text("edited mid-run\n")
        return real(self, job, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(Rebuilder, "reason", edit_before_late)
        run()
    later()
    seen = decided(monkeypatch)
    assert run().summary.ran >= 1 and "up[n=a]" in seen
    assert (project / "up" / "a.txt").read_text() == "EDITED MID-RUN\none"


def test_a_store_found_damaged_when_its_rows_are_read_takes_the_stamp_with_it(project):
    """The mark is read before the rows; the rows, read when the proof
    fails, show damage: the store is moved aside, and its stamp, which
    vouched for its records, goes with it."""
    run()
    db = sqlite3.connect(".flow/state.db")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'outputs'").fetchone()[0]
    db.close()
    with open(".flow/state.db", "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)
    later()
    (project / "src" / "a.txt").write_text("changed\n")
    result = run()
    assert result.summary.ran == 5  # (no output is recorded in the new store: every job runs)


def test_an_output_too_big_to_hash_again_as_the_run_ends_is_vouched_for_by_its_hash_next_time(project, monkeypatch):
    """A file hashed too soon after it changed has no signature to vouch
    with, and the run hashes again only small ones as it ends: the next run
    hashes it once, and what it found is kept for the runs after."""
    from flow.engine.decide import hashing

    real = hashing.Hasher.settle
    monkeypatch.setattr(hashing.Hasher, "settle", lambda self, max_bytes=0: real(self, max_bytes=0))
    run()
    monkeypatch.undo()
    monkeypatch.chdir(project)
    stamp = stamp_module.Stamp.read(".flow", _basis())
    assert stamp.racy  # (every output was hashed as soon as its job ended)
    later()
    assert run().dag is None
    assert not stamp_module.Stamp.read(".flow", _basis()).racy
    (project / "total.txt").write_text("by hand\n")
    assert run().summary.ran == 1  # (a changed one is still seen)


def _basis() -> str:
    """The stamp's basis in the project of these tests, for its default target."""
    from flow.engine.commands.build import Build as BuildResult
    from flow.engine.commands.build import _loaded, definitions_of, graph_cache

    wf, preparer, _ = _loaded(RunOptions(), BuildResult())
    return stamp_module.basis(graph_cache(definitions_of(wf, preparer), RunOptions()).fingerprint,
                              RunOptions().rerun_triggers)


def test_many_signatures_are_taken_by_two_processes_as_by_one(tmp_path, monkeypatch):
    """Past a few thousand paths a forked helper stats half of them: the
    signatures are the same as one process takes (missing, unreadable and
    present files alike, in order)."""
    for i in range(40):
        (tmp_path / f"f{i}").write_text("x" * i)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    paths = [str(tmp_path / f"f{i}") for i in range(40)] + [str(tmp_path / "gone"), str(tmp_path / "loop")]
    paths = paths[::2] + paths[1::2]
    forks = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    monkeypatch.setattr(stamp_module, "_HELPED", 2)
    assert stamp_module.signatures(paths) == stamp_module._stat(paths)
    assert forks == [1]
    numbers, _ = stamp_module._stat(paths)
    assert list(numbers[::3]).count(-1) == 1 and list(numbers[::3]).count(-2) == 1


def _reasoned(monkeypatch) -> list[str]:
    """The ids of the jobs the run puts to the rebuilder at all (vouched for or not)."""
    seen: list[str] = []
    real = Rebuilder.reason
    monkeypatch.setattr(Rebuilder, "reason", lambda self, job, **kw: seen.append(job.id) or real(self, job, **kw))
    return seen


def test_a_run_plans_only_the_jobs_a_change_can_reach(project, monkeypatch):
    run()
    later()
    (project / "src" / "b.txt").write_text("bee\n")
    seen = _reasoned(monkeypatch)
    result = run()
    assert sorted(seen) == ["all", "total", "up[n=b]"]  # (up[a], up[c] and extras are not planned)
    assert (result.summary.ran, result.summary.up_to_date) == (2, 3)


def test_the_jobs_after_a_job_that_must_run_are_planned_even_if_their_files_did_not_change(project, monkeypatch):
    run()
    (project / "up" / "a.txt").unlink()  # (up[a] runs again, writing what it wrote: total is decided and spared)
    seen = _reasoned(monkeypatch)
    result = run()
    assert sorted(seen) == ["all", "total", "up[n=a]"]
    assert (result.summary.ran, result.summary.up_to_date) == (1, 4)


def test_a_run_of_the_jobs_a_change_reached_leaves_a_stamp_that_holds_for_the_next(project):
    run()
    later()
    (project / "src" / "c.txt").write_text("sea\n")
    assert run().summary.ran == 2
    result = run()
    assert result.dag is None and result.summary.up_to_date == 5
    later()
    (project / "src" / "a.txt").write_text("ay\n")  # (and the stamp still sees what changes after)
    assert run().summary.ran == 2
    assert (project / "total.txt").read_text() == "AY\noneB\noneSEA\none"


def test_the_progress_counts_the_jobs_left_out_of_the_plan_as_done(project):
    run()
    later()
    (project / "src" / "b.txt").write_text("bee\n")
    r = subprocess.run([*FLOW, "run"], capture_output=True, text=True, check=True)
    assert "done  up (n=b)" in r.stderr and "[4/5]" in r.stderr and "[5/5]" in r.stderr, r.stderr
    assert r.stderr.splitlines()[-1].startswith("flow: 2 jobs ran, 3 up to date"), r.stderr


def test_an_event_stream_still_tells_of_every_job(project):
    """A run whose events are streamed plans every job: each up-to-date one
    has its event."""
    import json

    run()
    later()
    (project / "src" / "b.txt").write_text("bee\n")
    r = subprocess.run([*FLOW, "run", "--log-format", "json"], capture_output=True, text=True, check=True)
    events = [json.loads(line) for line in r.stdout.splitlines()]
    skipped = sorted(e["job"] for e in events if e["event"] == "job_skipped")
    assert skipped == ["all", "extras", "up[n=a]", "up[n=c]"], skipped


def test_the_jobs_a_change_reaches_are_the_changed_ones_and_all_after_them(project):
    """``Stamp.reach`` on the graph itself, in this process."""
    first = run()
    later()
    (project / "extra" / "one.txt").write_text("uno\n")
    stamp = stamp_module.Stamp.read(".flow", _basis())
    stamp.observe()
    order = first.dag.reachable(first.jobs)
    assert [j.id for j in stamp.reach(order)] == ["extras", "all"]
    assert [j.id for j in stamp.reach([j for j in order if j.id != "extras"])] == []


def test_a_stamp_that_has_no_place_for_a_file_is_not_rewritten(project):
    from flow.engine.decide.hashing import Hasher

    result = run()
    stamp = stamp_module.Stamp.read(".flow", _basis())
    stamp.observe()
    before = (project / ".flow" / stamp_module.FILE).read_bytes()
    job = next(j for j in result.dag.jobs.values() if j.id == "extras")
    job.inputs = [*job.inputs, "extra/new.txt"]
    assert not stamp.rewrite(".flow", "mark", [job], Hasher({}), lambda j: (), {})
    assert (project / ".flow" / stamp_module.FILE).read_bytes() == before


def test_a_run_of_the_jobs_a_change_reached_reads_only_their_records(project, monkeypatch):
    run()
    later()
    (project / "src" / "b.txt").write_text("bee\n")
    asked: list = []
    real = State.load_rows
    monkeypatch.setattr(State, "load_rows", lambda self, paths=None: (
        asked.append(None if paths is None else sorted(set(paths))), real(self, paths))[1])
    assert run().summary.ran == 2
    assert asked == [["extras.txt", "logs/b.log", "scripts/up.py", "src/b.txt", "total.txt",
                      "up/a.txt", "up/b.txt", "up/c.txt"]]


def test_a_log_another_job_reads_counts_as_changed_when_the_job_that_writes_it_runs(tmp_path, monkeypatch):
    (tmp_path / "Flowfile").write_text(textwrap.dedent("""\
        rule all:
            input: "y.txt"
        rule a:
            input: "in.txt"
            output: "x.txt"
            log: "a.log"
            shell: "cat {input} > {output}; cat {input} {input} > {log}"
        rule b:
            input: "a.log"
            output: "y.txt"
            shell: "cat {input} > {output}"
        """))
    (tmp_path / "in.txt").write_text("1\n")
    monkeypatch.chdir(tmp_path)
    run()
    assert run().dag is None  # (a stamp holds)
    later()
    (tmp_path / "in.txt").write_text("2\n")
    assert run().summary.ran == 2  # a, then b, which reads the log a wrote again
    assert (tmp_path / "y.txt").read_text() == "2\n2\n"
