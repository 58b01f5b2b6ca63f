"""The journal (``engine/decide/journal.py``): a finished job's record is
durable with one append, and the state store takes records in by the batch.
A kill -9 loses none (``test_crash.py`` kills whole runs); these tests hold
the journal and the store to it one piece at a time."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import wait_for
from flow.engine.decide.journal import FILE, Entry, Journal
from flow.engine.decide.schema import AttemptRecord
from flow.engine.decide.state import State


def record(state: State, name: str) -> None:
    """Record a job ``name`` that made ``out/<name>.txt``."""
    now = time.time()
    attempt = AttemptRecord(name, "make", {"n": name}, now, now, 0)
    stats = {f"out/{name}.txt": (2, 1, (3, 4), f"hash of {name}")}
    state.record_job(attempt, f"key of {name}", {"inputs": []}, [(f"out/{name}.txt", f"hash of {name}", False)], stats)


def in_store(directory: Path, table: str = "outputs") -> int:
    db = sqlite3.connect(directory / "state.db")
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def entry(seq: int, text: str) -> Entry:
    return Entry(seq, "store", [(f"out/{text}", "job", "key", "hash", 0)], ("job",), None, [])


def test_entries_are_read_back_in_the_order_appended(tmp_path):
    journal = Journal(str(tmp_path))
    for i in range(3):
        journal.append(entry(i, f"row {i}"))
    journal.close()
    assert Journal(str(tmp_path)).read() == [entry(0, "row 0"), entry(1, "row 1"), entry(2, "row 2")]


def test_a_torn_or_damaged_last_entry_is_not_read(tmp_path):
    journal = Journal(str(tmp_path))
    journal.append(entry(1, "whole"))
    journal.append(entry(2, "torn"))
    journal.close()
    path = tmp_path / FILE
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # (a kill in the middle of the second append)
    assert Journal(str(tmp_path)).read() == [entry(1, "whole")]
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # (a flipped byte)
    assert Journal(str(tmp_path)).read() == [entry(1, "whole")]


def test_a_new_journal_takes_the_permissions_of_the_store(tmp_path):
    store = tmp_path / "state.db"
    store.write_bytes(b"")
    os.chmod(store, 0o600)
    journal = Journal(str(tmp_path), like=str(store))
    journal.append(entry(1, "a"))
    journal.close()
    assert (tmp_path / FILE).stat().st_mode & 0o777 == 0o600


def test_a_record_is_in_the_journal_at_once_and_in_the_store_once_flushed(tmp_path):
    state = State(str(tmp_path))
    record(state, "a")
    assert state.outputs["out/a.txt"].key == "key of a"
    assert in_store(tmp_path) == 0 and len(Journal(str(tmp_path)).read()) == 1
    state.flush()
    assert in_store(tmp_path) == 1 and in_store(tmp_path, "attempts") == 1
    assert Journal(str(tmp_path)).read() == []
    state.close()


def test_closing_the_store_takes_the_waiting_records_in(tmp_path):
    state = State(str(tmp_path))
    record(state, "a")
    record(state, "b")
    state.close()
    assert in_store(tmp_path) == 2 and Journal(str(tmp_path)).read() == []


KILLED = """\
import os, signal, sys, time
sys.path.insert(0, {tests!r})
from flow.engine.decide.state import State
from test_journal import record
state = State({directory!r})
record(state, "a")
record(state, "b")
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_after_two_records(directory: Path) -> None:
    script = KILLED.format(tests=str(Path(__file__).parent), directory=str(directory))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_records_a_killed_process_left_are_taken_in_when_the_store_is_opened(tmp_path):
    _killed_after_two_records(tmp_path)
    assert in_store(tmp_path) == 0 and len(Journal(str(tmp_path)).read()) == 2
    state = State(str(tmp_path))
    assert set(state.outputs) == {"out/a.txt", "out/b.txt"}
    assert in_store(tmp_path) == 2 and Journal(str(tmp_path)).read() == []
    state.close()


def test_a_dry_run_reads_the_records_a_killed_process_left_and_changes_nothing(tmp_path):
    _killed_after_two_records(tmp_path)
    state = State(str(tmp_path), readonly=True)
    assert set(state.outputs) == {"out/a.txt", "out/b.txt"}
    assert state.files["out/a.txt"] == (2, 1, (3, 4), "hash of a")
    state.close()
    assert in_store(tmp_path) == 0 and len(Journal(str(tmp_path)).read()) == 2


def test_taking_the_same_records_in_twice_changes_nothing(tmp_path):
    """A kill between the store's commit and the journal's truncation."""
    state = State(str(tmp_path))
    record(state, "a")
    left = (tmp_path / FILE).read_bytes()
    state.close()
    (tmp_path / FILE).write_bytes(left)
    State(str(tmp_path)).close()
    assert in_store(tmp_path, "attempts") == 1


def test_a_journal_left_beside_a_store_made_anew_is_not_taken_in(tmp_path):
    _killed_after_two_records(tmp_path)
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"state.db{suffix}").exists():
            os.remove(tmp_path / f"state.db{suffix}")  # (the user started over)
    state = State(str(tmp_path))
    assert state.outputs == {} and in_store(tmp_path) == 0
    state.close()


def test_the_numbering_goes_on_after_records_were_taken_in(tmp_path):
    state = State(str(tmp_path))
    record(state, "a")
    state.close()
    _killed_after_two_records(tmp_path)  # (numbered after a's: taken in, not skipped as seen)
    state = State(str(tmp_path))
    assert set(state.outputs) == {"out/a.txt", "out/b.txt"} and in_store(tmp_path, "attempts") == 3
    state.close()


def test_a_finished_jobs_record_reaches_the_store_while_the_run_goes_on(project):
    """Another process (``flow report``, ``flow lineage``) reads the store:
    a record waits in the journal a moment at most, not until the run ends."""
    project.write("Flowfile", textwrap.dedent("""\
        rule all:
            input: "slow.txt"
        rule fast:
            output: "fast.txt"
            shell: "echo fast > {output}"
        rule slow:
            input: "fast.txt"
            output: "slow.txt"
            shell: "touch started; sleep 5; cat {input} > {output}"
        """))
    proc = project.start("run")
    try:
        wait_for(lambda: project.exists("started"), timeout=30, what="the slow job to start")
        wait_for(lambda: in_store(project.root / ".flow") == 1, timeout=3, what="fast's record in the store")
        assert not project.exists("slow.txt")
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_flush_interrupted_just_after_its_commit_takes_nothing_in_twice(tmp_path, monkeypatch):
    """Ctrl-C as the store's commit returns: the records stay pending, and
    closing the store must not write their attempts a second time."""
    state = State(str(tmp_path))
    record(state, "a")
    real = State._taken_in

    def interrupted(self, pending):
        monkeypatch.setattr(State, "_taken_in", real)
        raise KeyboardInterrupt

    monkeypatch.setattr(State, "_taken_in", interrupted)
    try:
        state.flush()
    except KeyboardInterrupt:
        pass
    assert state.pending  # (not known to be in the store)
    state.close()
    assert in_store(tmp_path, "attempts") == 1 and in_store(tmp_path) == 1


def test_a_dry_run_explains_with_the_parts_a_killed_process_recorded(tmp_path):
    state = State(str(tmp_path))
    now = time.time()
    state.record_job(AttemptRecord("a", "make", {}, now, now, 0), "old key", {"params": "old"},
                     [("out/a.txt", "h", False)], {})
    state.close()
    _killed_after_two_records(tmp_path)  # (a and b recorded again: parts {"inputs": []})
    state = State(str(tmp_path), readonly=True)
    assert state.job_parts("a") == {"inputs": []}
    assert state.mark() is None  # (the store's generation does not vouch for what it has not taken in)
    state.close()


def test_lineage_reads_the_jobs_a_killed_process_recorded(tmp_path):
    from flow.engine.decide.lineage import JobRecords

    _killed_after_two_records(tmp_path)
    state = State(str(tmp_path), readonly=True)
    lineage = JobRecords(state).upstream("out/a.txt")
    assert lineage.jobs["a"].rule == "make" and lineage.jobs["a"].key == "key of a"
    state.close()
