"""What flow reads to know a file's content: the stat signature that spares
reading an unchanged file again, and the files it refuses to read at all.

A file is read again whenever its size, mtime, inode or ctime differ from
the stat cache. Size and mtime are the user's to set (``touch -r``,
``os.utime``); ctime is not: so a change that keeps the first three is still
seen. Tests change files the way a user or a tool would, on real files, and
run the real ``flow`` command."""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

COPY = """\
rule a:
    input: "in.txt"
    output: "out.txt"
    shell: "cp {input} {output}"
"""

DIRECTORY_INPUT = """\
rule a:
    input: "data"
    output: "out.txt"
    shell: "cat {input}/x.txt > {output}"
"""

DIRECTORY_OUTPUT = """\
rule a:
    input: "in.txt"
    output: directory("d")
    shell: "mkdir {output} && cp {input} {output}/x.txt"
"""

AN_HOUR_NS = 3600 * 1_000_000_000


def _write_dated(project, name: str, text: str) -> None:
    """Write ``name`` with an mtime an hour ago, as a file copied with its date."""
    path = project.write(name, text)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - AN_HOUR_NS))


def _rewrite_keeping_size_mtime_and_inode(path, text: str) -> None:
    """Write ``text`` (as long as the old content) over ``path`` in place and
    put its mtime back to the nanosecond: only its ctime says it changed."""
    before = os.stat(path)
    assert len(text.encode()) == before.st_size
    with open(path, "r+b") as f:
        f.write(text.encode())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert after.st_ctime_ns != before.st_ctime_ns


def _assert_trusted(project, *names: str) -> None:
    """The stat cache vouches for each file as it is now (without this the
    tests below would pass merely because an entry was not trusted yet)."""
    db = sqlite3.connect(project.root / ".flow/state.db")
    try:
        rows = {p: m for p, m in db.execute("SELECT path, mtime_ns FROM files")}
    finally:
        db.close()
    for name in names:
        assert rows.get(name) == os.stat(project.root / name).st_mtime_ns, f"{name} is not trusted yet"


def _made_twice(project, flowfile: str, inputs: dict[str, str]) -> None:
    """Run the pipeline, then once more so that every stat cache entry is trusted."""
    project.flowfile(flowfile)
    for name, text in inputs.items():
        _write_dated(project, name, text)
    assert project.ran() == ["a"]
    time.sleep(0.1)  # past the racy window of what the first run hashed
    assert project.ran() == []


def _as_written_by_the_previous_version(project) -> None:
    """Give the store's stat cache the previous version's table: no ctime column."""
    db = sqlite3.connect(project.root / ".flow/state.db")
    db.executescript("""
        CREATE TABLE old_files AS SELECT path, size, mtime_ns, inode, hash FROM files;
        DROP TABLE files;
        CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, hash TEXT);
        INSERT INTO files SELECT * FROM old_files;
        DROP TABLE old_files;
    """)
    db.close()


# a change that keeps size, mtime and inode -------------------------------------------------


def test_input_rewritten_keeping_size_mtime_and_inode_runs_its_job(project):
    _made_twice(project, COPY, {"in.txt": "aaaa\n"})
    _assert_trusted(project, "in.txt")
    _rewrite_keeping_size_mtime_and_inode(project.root / "in.txt", "bbbb\n")
    assert project.ran() == ["a"]
    assert project.read("out.txt") == "bbbb\n"


def test_output_rewritten_keeping_size_mtime_and_inode_is_made_again(project):
    _made_twice(project, COPY, {"in.txt": "aaaa\n"})
    _assert_trusted(project, "out.txt")
    _rewrite_keeping_size_mtime_and_inode(project.root / "out.txt", "bbbb\n")
    r = project.run("-n")
    assert "would run  a: output out.txt was modified outside flow" in r.stdout, r.output
    assert project.ran() == ["a"]
    assert project.read("out.txt") == "aaaa\n"


def test_file_in_an_input_directory_rewritten_keeping_size_mtime_and_inode_runs_its_job(project):
    _made_twice(project, DIRECTORY_INPUT, {"data/x.txt": "aaaa\n"})
    _assert_trusted(project, "data/x.txt")
    _rewrite_keeping_size_mtime_and_inode(project.root / "data/x.txt", "bbbb\n")
    assert project.ran() == ["a"]
    assert project.read("out.txt") == "bbbb\n"


def test_file_in_a_directory_output_rewritten_keeping_size_mtime_and_inode_is_made_again(project):
    _made_twice(project, DIRECTORY_OUTPUT, {"in.txt": "aaaa\n"})
    _assert_trusted(project, "d/x.txt")
    _rewrite_keeping_size_mtime_and_inode(project.root / "d/x.txt", "bbbb\n")
    assert project.ran() == ["a"]
    assert project.read("d/x.txt") == "aaaa\n"


# a store written by the previous version (no ctime in its stat cache) -------------------------


def test_stat_cache_of_the_previous_version_vouches_for_no_file(project):
    _made_twice(project, COPY, {"in.txt": "aaaa\n"})
    _as_written_by_the_previous_version(project)
    _rewrite_keeping_size_mtime_and_inode(project.root / "in.txt", "bbbb\n")
    assert project.ran() == ["a"]
    assert project.read("out.txt") == "bbbb\n"
    assert project.ran() == []


def test_dry_run_reads_a_stat_cache_of_the_previous_version_without_trusting_it(project):
    _made_twice(project, COPY, {"in.txt": "aaaa\n"})
    _as_written_by_the_previous_version(project)
    _rewrite_keeping_size_mtime_and_inode(project.root / "in.txt", "bbbb\n")
    r = project.run("-n")
    assert "would run  a: input in.txt changed" in r.stdout, r.output


# racily clean: a change in the same timestamp tick as the hashing ------------------------------


def test_file_hashed_just_after_its_ctime_changed_is_not_trusted_yet(tmp_path):
    # An old mtime does not make the entry safe: a second change within the
    # tick of the first would leave size, mtime, inode and ctime as they are.
    from flow.engine.decide.hashing import Hasher

    path = tmp_path / "f.txt"
    path.write_text("one\n")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - AN_HOUR_NS))
    hasher = Hasher({})
    hasher.digest(str(path))
    assert hasher.cache[str(path)][1] == -1


def test_a_file_the_run_saw_as_the_stat_cache_has_it_is_not_looked_at_again(tmp_path, monkeypatch):
    from flow.engine.decide.hashing import Hasher

    path = tmp_path / "f.txt"
    path.write_text("one\n")
    st = os.stat(path)
    sig = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    cache = {str(path): (sig[0], sig[1], (sig[2], sig[3]), "the cached hash")}
    monkeypatch.setattr(os, "stat", None)  # (a stat would fail the test)
    assert Hasher(dict(cache), seen=lambda p: sig).digest(str(path)) == "the cached hash"
    assert Hasher(dict(cache), seen=lambda p: None).digest(str(path)) is None  # (seen missing)


def test_a_file_the_run_saw_other_than_the_stat_cache_has_it_is_hashed(tmp_path):
    from flow.engine.decide.hashing import NOT_A_FILE, Hasher, file_digest

    path = tmp_path / "f.txt"
    path.write_text("one\n")
    st = os.stat(path)
    cache = {str(path): (st.st_size, st.st_mtime_ns, (st.st_ino, st.st_ctime_ns), "a stale hash")}
    seen_other = (st.st_size, st.st_mtime_ns + 1, st.st_ino, st.st_ctime_ns)
    assert Hasher(dict(cache), seen=lambda p: seen_other).digest(str(path)) == "a stale hash"  # (the file system asked: it agrees with the cache)
    del cache[str(path)]
    assert Hasher(cache, seen=lambda p: NOT_A_FILE).digest(str(path)) == file_digest(str(path))


# files flow refuses to read: FIFOs, sockets, devices ----------------------------------------
# Opening a FIFO blocks until a writer comes, a device may never end: flow
# never opens one. Before, each of these runs hung; the timeouts bound them.

FIFO_INPUT = """\
rule a:
    input: "in.fifo"
    output: "out.txt"
    shell: "echo made > {output}"
"""

DEVICE_IN_DIRECTORY_OUTPUT = """\
rule a:
    output: directory("d")
    shell: "mkdir {output} && echo x > {output}/x.txt && ln -s /dev/zero {output}/zero"
"""


def _no_traceback(r) -> None:
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output


def test_fifo_as_an_input_is_refused_with_exit_2(project):
    project.flowfile(FIFO_INPUT)
    os.mkfifo(project.root / "in.fifo")
    r = project.flow("run", timeout=20)
    assert r.returncode == 2, r.output
    assert "in.fifo is a FIFO" in r.stderr and "regular file" in r.stderr, r.stderr
    _no_traceback(r)
    assert not project.exists("out.txt")


def test_dry_run_refuses_a_fifo_input_with_exit_2(project):
    project.flowfile(FIFO_INPUT)
    os.mkfifo(project.root / "in.fifo")
    r = project.flow("run", "-n", timeout=20)
    assert r.returncode == 2, r.output
    assert "in.fifo is a FIFO" in r.stderr, r.stderr


def test_input_that_links_to_a_fifo_is_refused_naming_the_link(project):
    project.flowfile(FIFO_INPUT.replace("in.fifo", "in.txt"))
    os.mkfifo(project.root / "pipe")
    os.symlink("pipe", project.root / "in.txt")
    r = project.flow("run", timeout=20)
    assert r.returncode == 2, r.output
    assert "in.txt is a link to pipe, a FIFO" in r.stderr, r.stderr


def test_fifo_inside_an_input_directory_is_refused_naming_it(project):
    project.flowfile(DIRECTORY_INPUT)
    project.write("data/x.txt", "x\n")
    os.mkfifo(project.root / "data/pipe")
    r = project.flow("run", timeout=20)
    assert r.returncode == 2, r.output
    assert "data/pipe is a FIFO" in r.stderr, r.stderr
    _no_traceback(r)


def test_link_to_dev_zero_inside_a_directory_output_fails_the_job_naming_it(project):
    project.flowfile(DEVICE_IN_DIRECTORY_OUTPUT)
    r = project.flow("run", timeout=20)
    assert r.returncode == 1, r.output
    assert "d/zero is a link to /dev/zero, a character device" in r.stderr, r.stderr
    _no_traceback(r)
    assert project.recorded_outputs() == set()


def _socket(path) -> str:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # the socket file stays
    return str(path)


def _link_to_dev_null(path) -> str:
    os.symlink("/dev/null", path)
    return str(path)


def _block_device(path) -> str:
    os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 0))  # (a loop device's numbers)
    return str(path)


SPECIAL = {"socket": (_socket, "a socket"),
           "link to a character device": (_link_to_dev_null, "a link to /dev/null, a character device"),
           "block device": (_block_device, "a block device")}


@pytest.mark.parametrize("make", SPECIAL.values(), ids=SPECIAL.keys())
def test_special_file_is_refused_without_being_opened(tmp_path, monkeypatch, make):
    from flow.engine.decide.hashing import Hasher
    from flow.engine.errors import UserError

    make_file, kind = make
    path = make_file(tmp_path / "special")
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(os.fspath(p)) or real_open(p, *a, **k))
    with pytest.raises(UserError) as refused:
        Hasher({}).digest(path)
    assert str(refused.value).startswith(f"{path} is {kind}, not a regular file")
    assert opened == []


def test_file_replaced_by_a_fifo_after_it_was_looked_at_is_not_read(tmp_path):
    # Between the stat that found a regular file and the open, a FIFO took its
    # place: reading what was opened must not block.
    os.mkfifo(tmp_path / "pipe")
    code = "import sys\nfrom flow.engine.decide.hashing import file_digest\nfile_digest(sys.argv[1])"
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "pipe")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "is a FIFO" in r.stderr, r.stderr
