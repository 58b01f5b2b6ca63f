"""Faults around the run: a damaged, read-only or newer state store, files
flow may not read, and what flow writes that the Flowfile must not name.

Each fault gets one clear message and exit code 2, never a traceback, and
never costs a finished job's record."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess

import pytest
from conftest import FLOW, Project

COPY = """\
rule a:
    input: "in.txt"
    output: "out.txt"
    shell: "cp {input} {output}"
"""


def _no_traceback(r) -> None:
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output


def test_garbage_state_store_is_moved_aside_and_outputs_count_as_unrecorded(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    (project.root / ".flow/state.db").write_bytes(b"this is not a database" * 100)
    r = project.run()
    assert "damaged" in r.stderr and "moved to" in r.stderr, r.stderr
    assert "not made by flow" in r.stderr
    assert any(n.startswith("state.db.corrupt-") for n in os.listdir(project.root / ".flow"))
    assert project.ran() == []


def test_empty_state_store_is_a_fresh_start(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    (project.root / ".flow").mkdir()
    (project.root / ".flow/state.db").write_bytes(b"")
    assert project.ran() == ["a"]
    assert project.ran() == []


MANY = """\
rule all:
    input: expand("out/{n}.txt", n=range(300))

rule make:
    output: "out/{n}.txt"
    params: pad="x" * 200
    shell: "echo {wildcards.n} > {output}"
"""


def test_missing_state_store_makes_existing_outputs_count_as_unrecorded(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    os.remove(project.root / ".flow/state.db")
    r = project.run("-n")
    assert "output out.txt exists but was not made by flow" in r.stdout, r.output
    assert project.ran() == ["a"]
    assert project.ran() == []


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_state_store_is_detected_and_the_run_recovers(project, fraction):
    project.flowfile(MANY)
    project.run("-j", "2")
    db = project.root / ".flow/state.db"
    size = db.stat().st_size
    assert size > 64 * 1024, "the store must span many pages for this test to mean anything"
    with open(db, "r+b") as f:
        f.truncate(int(size * fraction))
    r = project.run("-j", "2")
    _no_traceback(r)
    assert "damaged" in r.stderr, r.stderr
    assert project.read("out/7.txt") == "7\n"
    assert project.ran() == []
    assert project.integrity() == "ok"


def _damage_pages_of(db_path, table: str) -> None:
    """Overwrite every leaf page of ``table`` (or index) in the store."""
    db = sqlite3.connect(db_path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = [p for n, p, t in db.execute("SELECT name, pageno, pagetype FROM dbstat") if n == table and t == "leaf"]
    db.close()
    assert pages, f"{table} has no pages"
    with open(db_path, "r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(b"\xa5" * page_size)


@pytest.mark.parametrize("table", ["jobs", "sqlite_autoindex_jobs_1", "sqlite_autoindex_outputs_1"])
def test_damage_found_only_mid_run_is_salvaged_without_losing_a_record(project, table):
    # flow reads the output records and stat cache whole at the start; damage
    # elsewhere shows only when a job is recorded.
    project.flowfile(MANY)
    project.run("-j", "2")
    _damage_pages_of(project.root / ".flow/state.db", table)
    for n in (5, 150, 299):
        project.write(f"out/{n}.txt", "changed\n")
    r = project.run("-j", "2")
    assert "proved damaged" in r.stderr and "carried over" in r.stderr, r.stderr
    assert sorted(project.ran()) == [] and "3 jobs ran, 297 up to date" in r.stderr, r.stderr
    assert project.read("out/150.txt") == "150\n"
    assert project.integrity() == "ok"


@pytest.mark.parametrize("table", ["runs", "sqlite_autoindex_runs_1"])
def test_damage_found_by_a_run_that_read_no_record_loses_no_record(project, table):
    # A run the stamp proves reads no output record; damage shows when it
    # writes its row of the history, and the records must be carried over.
    project.flowfile(MANY)
    project.run("-j", "2")
    assert "nothing to do" in project.run("-j", "2").stderr
    _damage_pages_of(project.root / ".flow/state.db", table)
    r = project.run("-j", "2")
    _no_traceback(r)
    assert "nothing to do" in r.stderr and "damaged" in r.stderr, r.stderr
    r = project.run("-j", "2")
    assert project.ran() == [] and "nothing to do, 300 jobs up to date" in r.stderr, r.stderr
    assert project.integrity() == "ok"


def test_dry_run_on_a_damaged_state_store_changes_nothing(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    garbage = b"this is not a database" * 100
    (project.root / ".flow/state.db").write_bytes(garbage)
    before = sorted(os.listdir(project.root / ".flow"))
    r = project.run("-n")
    assert "damaged" in r.stderr, r.stderr
    assert "would run  a" in r.stdout
    assert sorted(os.listdir(project.root / ".flow")) == before
    assert (project.root / ".flow/state.db").read_bytes() == garbage


def test_state_store_of_a_newer_flow_is_refused(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    db = sqlite3.connect(project.root / ".flow/state.db")
    db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.commit()
    db.close()
    r = project.flow("run")
    assert r.returncode == 2
    assert "newer flow" in r.stderr, r.stderr
    _no_traceback(r)


def test_read_only_state_directory_is_an_error_and_keeps_the_state(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    project.write("in.txt", "y\n")
    os.chmod(project.root / ".flow", 0o555)
    try:
        r = project.flow("run", obey_permissions=True)
    finally:
        os.chmod(project.root / ".flow", 0o755)
    assert r.returncode == 2, r.output
    assert ".flow" in r.stderr, r.stderr
    _no_traceback(r)
    assert not any("corrupt" in n for n in os.listdir(project.root / ".flow"))
    assert project.ran() == ["a"]
    assert project.read("out.txt") == "y\n"


def test_read_only_state_store_is_an_error_and_records_no_job(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    project.write("in.txt", "y\n")
    os.chmod(project.root / ".flow/state.db", 0o444)
    try:
        r = project.flow("run", obey_permissions=True)
    finally:
        os.chmod(project.root / ".flow/state.db", 0o644)
    assert r.returncode == 2, r.output
    assert ".flow/state.db" in r.stderr, r.stderr
    _no_traceback(r)
    assert project.ran() == ["a"]  # nothing was recorded: the job runs again
    assert project.ran() == []


def test_missing_state_store_in_an_existing_state_directory_is_reported_like_a_damaged_one(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    r = project.run()
    assert "warning" not in r.stderr, r.stderr  # a new project: nothing was lost
    os.remove(project.root / ".flow/state.db")
    r = project.run()
    assert "warning: .flow/state.db is missing; flow starts with an empty state: " \
           "existing outputs count as not made by flow" in r.stderr, r.stderr


def test_dry_run_reports_a_missing_state_store(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    assert "warning" not in project.run("-n").stderr  # a new project: nothing was lost
    project.run()
    os.remove(project.root / ".flow/state.db")
    r = project.run("-n")
    assert "warning: .flow/state.db is missing; existing outputs count as not made by flow" in r.stderr, r.stderr


def test_empty_state_store_in_an_existing_state_directory_is_reported_like_a_damaged_one(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    (project.root / ".flow/state.db").write_bytes(b"")
    r = project.run()
    assert "warning: .flow/state.db is empty; flow starts with an empty state: " \
           "existing outputs count as not made by flow" in r.stderr, r.stderr


def test_restoring_the_permissions_of_a_read_only_state_store_is_enough(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    project.write("in.txt", "y\n")
    os.chmod(project.root / ".flow/state.db", 0o444)
    r = project.flow("run", obey_permissions=True)
    assert r.returncode == 2 and ".flow/state.db" in r.stderr, r.output
    os.chmod(project.root / ".flow/state.db", 0o644)
    r = project.flow("run", obey_permissions=True)
    assert r.returncode == 0, r.output
    assert project.read("out.txt") == "y\n"


@pytest.fixture
def small_disk(tmp_path):
    """A project on a real file system of 1 MiB (tmpfs), to fill up."""
    root = tmp_path / "disk"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], check=True)
    try:
        yield Project(root)
    finally:
        subprocess.run(["umount", str(root)], check=True)


def _fill(root, leave: int) -> None:
    """Fill the file system of ``root`` up, then free ``leave`` bytes of it."""
    fd = os.open(root / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)
    os.truncate(root / "filler", os.path.getsize(root / "filler") - leave)


def test_state_store_that_cannot_be_opened_on_a_full_disk_says_the_disk_is_full(small_disk):
    project = small_disk
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    project.write("in.txt", "y\n")
    _fill(project.root, leave=16 * 1024)  # room for the lock, not for SQLite's shared memory
    r = project.flow("run")
    assert r.returncode == 2, r.output
    assert "cannot open .flow/state.db: the disk is full" in r.stderr, r.stderr
    assert "Free some space on the disk that holds .flow/" in r.stderr and "readable" not in r.stderr, r.stderr
    _no_traceback(r)


def test_job_that_fills_the_disk_is_not_recorded_and_flow_says_the_disk_is_full(small_disk):
    project = small_disk
    fill = "cp {input} {output} && if [ -e fill ]; then cat /dev/zero > filler 2>/dev/null; fi; true"
    project.flowfile(COPY.replace("cp {input} {output}", fill))
    project.write("in.txt", "x\n")
    project.write("fill", "")
    r = project.flow("run")
    assert r.returncode == 2, r.output
    assert "cannot write .flow/state.db: the disk is full" in r.stderr, r.stderr
    assert "Free some space on the disk that holds .flow/" in r.stderr, r.stderr
    os.remove(project.root / "fill")
    os.remove(project.root / "filler")
    assert project.ran() == ["a"]  # it was not recorded


def test_unreadable_input_is_named_with_the_reason(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    os.chmod(project.root / "in.txt", 0)
    r = project.flow("run", obey_permissions=True)
    assert r.returncode == 2, r.output
    assert "in.txt" in r.stderr and "Permission denied" in r.stderr, r.stderr
    _no_traceback(r)


def test_config_file_that_is_not_utf8_is_named(project):
    project.flowfile('configfile: "config.yaml"\n' + COPY)
    (project.root / "config.yaml").write_bytes(b"a: \xff\xfe\n")
    r = project.flow("run")
    assert r.returncode == 2
    assert "config.yaml" in r.stderr and "UTF-8" in r.stderr, r.stderr
    _no_traceback(r)


def test_output_inside_flows_state_directory_is_refused(project):
    project.flowfile("""\
rule a:
    output: ".flow/state.db"
    shell: "echo > {output}"
""")
    r = project.flow("run")
    assert r.returncode == 2
    assert "Flowfile:2" in r.stderr and "flow's own state" in r.stderr, r.stderr
    assert not project.exists(".flow/state.db")


def test_output_that_is_the_flowfile_itself_is_refused(project):
    text = """\
rule a:
    output: "Flowfile"
    shell: "echo > {output}"
"""
    project.flowfile(text)
    r = project.flow("run", "Flowfile")
    assert r.returncode == 2
    assert "read from" in r.stderr, r.stderr
    assert project.read("Flowfile") == text


def test_symbolic_link_made_by_an_earlier_job_cannot_lead_a_later_output_outside(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    project.flowfile(f"""\
rule all:
    input: "d/x.txt"

rule x:
    input: "d"
    output: "d/x.txt"
    shell: "echo escaped > {{output}}"

rule d:
    output: directory("d")
    shell: "ln -s {outside} {{output}}"
""")
    r = project.flow("run", "-j", "1")
    assert r.returncode == 2, r.output
    assert "leads outside the working directory" in r.stderr, r.stderr
    assert os.listdir(outside) == []


# Inputs the fuzzers found answered with an internal error, a hang or no memory left:
# each must now be one message and exit code 2.

FOUND_BY_FUZZING = {
    "shell_format_width": 'rule a:\n    output: "o"\n    shell: "touch {output} {threads:>9999999999}"\n',
    "expand_format_width": 'X = expand("{a:>99999999999}", a=[1])\n',
    "str_format_width": 'X = "{:>999999999999999}".format(1)\n',
    "string_times_huge": 'X = "" * 99999999999999999999999\n',
    "float_overflow": "X = int(1e400)\n",
    "huge_range": "X = range(99999999999999999999999)\n",
    "nul_in_a_path": 'rule a:\n    output: "a\\x00b"\n    shell: "x"\n',
    "nul_in_a_command": 'rule a:\n    output: "o"\n    shell: "touch {output}; echo \\x00"\n',
    "lone_surrogate": 'rule a:\n    output: "o\\ud800"\n    shell: "x"\n',
    "path_too_long": 'rule a:\n    output: "b" * 5000\n    shell: "x"\n',
    "hand_written_run_reference": 'rule a:\n    output: "o"\n    run: @run3\n',
}


@pytest.mark.parametrize("text", FOUND_BY_FUZZING.values(), ids=FOUND_BY_FUZZING.keys())
def test_input_found_by_fuzzing_gets_one_message_and_exit_2(project, text):
    project.flowfile(text)
    r = project.flow("run", "-n", timeout=60)
    _no_traceback(r)
    if "run: @run3" in text:  # Python code, though not good Python: it fails when it runs
        r = project.flow("run", timeout=60)
        _no_traceback(r)
        return
    assert r.returncode == 2, r.output
    assert "Flowfile:" in r.stderr or "rule a" in r.stderr, r.stderr


@pytest.mark.parametrize("config", ["a: &x [*x]", "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
                                    + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                                              for p, c in zip("abcdefgh", "bcdefghi", strict=True))])
def test_config_that_refers_to_itself_or_explodes_is_refused(project, config):
    project.write("config.yaml", config)
    project.flowfile('configfile: "config.yaml"\n\nrule a:\n    output: "o"\n    shell: "touch {output}"\n')
    r = project.flow("run", "-n", timeout=60)
    assert r.returncode == 2, r.output
    assert "refers to itself" in r.stderr
    _no_traceback(r)


@pytest.mark.parametrize("value", ["2024-13-45", "!!float", "!!bool abc", "0x" + "f" * 5000])
def test_config_value_that_yaml_cannot_convert_is_taken_as_text_or_number(project, value):
    project.flowfile('rule a:\n    output: "o"\n    params: v=config["v"]\n    shell: "touch {output}"\n')
    r = project.flow("run", "-n", "--config", f"v={value}", timeout=60)
    assert r.returncode == 0, r.output


def test_glob_wildcards_ends_in_a_directory_with_symbolic_link_loops(project):
    project.write("data/x/a.txt", "a\n")
    os.symlink(".", project.root / "data/self")
    os.symlink("..", project.root / "data/up")
    project.flowfile('X = glob_wildcards("data/{p}.txt").p\n\nrule all:\n    input: expand("data/{p}.txt", p=X)\n')
    r = project.flow("run", "-n", timeout=60)
    assert r.returncode == 0, r.output


def test_file_names_that_are_not_utf8_are_recorded(project):
    os.makedirs(project.root / "raw")
    (project.root / "raw").joinpath(os.fsdecode(b"caf\xe9.txt")).write_text("b\n")
    project.flowfile("""\
S = glob_wildcards("raw/{s}.txt").s
rule all:
    input: expand("out/{s}.txt", s=S)
rule copy:
    input: "raw/{s}.txt"
    output: "out/{s}.txt"
    shell: "cp {input} {output}"
""")
    r = project.run()
    _no_traceback(r)
    assert os.path.exists(os.fsencode(project.root / "out") + b"/caf\xe9.txt")
    assert project.ran() == []


def test_dry_run_works_in_a_read_only_state_directory(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    project.run()
    os.chmod(project.root / ".flow", 0o555)
    try:
        r = project.flow("run", "-n", obey_permissions=True)
    finally:
        os.chmod(project.root / ".flow", 0o755)
    assert r.returncode == 0, r.output
    assert "would run 0 jobs, 1 up to date" in r.stderr


def test_state_store_that_is_not_a_regular_file_is_named(project):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    os.makedirs(project.root / ".flow")
    os.mkfifo(project.root / ".flow/state.db")
    for args in (["run", "-n"], ["run"]):
        r = project.flow(*args, timeout=20)
        assert r.returncode == 2, r.output
        assert ".flow/state.db is not a regular file" in r.stderr


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_run_with_a_closed_output_stream_still_runs(project, closed):
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    fd = 1 if closed == "stdout" else 2
    proc = subprocess.run([*FLOW, "run"], cwd=project.root, close_fds=True,
                          preexec_fn=lambda: os.close(fd), capture_output=False)
    assert proc.returncode == 0
    assert project.read("out.txt") == "x\n"
