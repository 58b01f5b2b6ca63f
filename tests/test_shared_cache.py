"""The shared cache of job results (``engine/run/shared_cache.py``) on real
files, concurrent stores in real processes, and ``flow cache stats`` and
``flow cache prune`` through the real command."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from conftest import _DROP_OVERRIDE, wait_for
from flow.engine.commands.cache import Size
from flow.engine.run import shared_cache
from flow.engine.run.shared_cache import SharedCache

KEY = "ab" + "0" * 30
OTHER = "cd" + "1" * 30


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    """A job's working directory (outputs are named relative to it), beside the cache."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def cache(tmp_path: Path) -> SharedCache:
    return SharedCache(str(tmp_path / "cache"))


def write(path: str, data: bytes) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)


def tree(root: str) -> dict[str, bytes | None]:
    """Every file (its bytes) and directory (None) under ``root``, by relative path."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            out[os.path.relpath(os.path.join(dirpath, f), root)] = Path(dirpath, f).read_bytes()
    return out


def store_one(cache: SharedCache, key: str, size: int, rule: str = "r") -> None:
    write(f"{key}.bin", os.urandom(size))
    assert cache.store(key, rule, [(f"{key}.bin", "digest")])


def used_at(cache: SharedCache, key: str, when: float) -> None:
    os.utime(os.path.join(cache.root, "entries", key[:2], key, "manifest.json"), (when, when))


def leftovers(cache: SharedCache) -> list[str]:
    return os.listdir(cache.tmp) if os.path.isdir(cache.tmp) else []


# store, lookup, restore ------------------------------------------------------------


def test_a_stored_file_restores_byte_identical(work, cache):
    data = os.urandom(100_000)
    write("out/a.bin", data)
    assert cache.store(KEY, "make_a", [("out/a.bin", "h-a")])
    entry = cache.lookup(KEY)
    assert entry is not None and entry.rule == "make_a"
    assert entry.files == (shared_cache.StoredFile("out/a.bin", "h-a", False, 100_000),)
    cache.restore(entry, ["elsewhere/deep/a.bin"])
    assert Path("elsewhere/deep/a.bin").read_bytes() == data
    assert not os.path.lexists("elsewhere/deep/.a.bin.flow-tmp")


def test_a_stored_directory_tree_restores_identical(work, cache):
    write("d/top.txt", b"top\n")
    write("d/sub/inner.bin", os.urandom(5000))
    write("d/sub/deeper/x", b"")
    os.mkdir("d/empty")
    write("run.sh", b"#!/bin/sh\n")
    os.chmod("run.sh", 0o755)
    assert cache.store(KEY, "r", [("d", "h-d"), ("run.sh", "h-s")])
    entry = cache.lookup(KEY)
    assert [(f.is_dir, f.size) for f in entry.files] == [(True, 5004), (False, 10)]
    cache.restore(entry, ["copy/d", "copy/run.sh"])
    assert tree("copy/d") == tree("d")
    assert os.stat("copy/run.sh").st_mode & 0o100  # still executable
    assert os.stat("copy/d/top.txt").st_mode & stat.S_IWUSR  # writable again: a copy, not the entry


def test_a_restored_file_is_a_copy_not_a_link(work, cache):
    write("a", b"one")
    cache.store(KEY, "r", [("a", "h")])
    entry = cache.lookup(KEY)
    cache.restore(entry, ["b"])
    Path("b").write_bytes(b"edited")
    cache.restore(entry, ["c"])
    assert Path("c").read_bytes() == b"one"


def test_restore_replaces_what_is_at_the_path(work, cache):
    write("a", b"new")
    cache.store(KEY, "r", [("a", "h")])
    write("old/stale", b"x")
    cache.restore(cache.lookup(KEY), ["old"])
    assert Path("old").read_bytes() == b"new"


def test_an_unknown_key_is_a_miss(work, cache):
    store_one(cache, KEY, 10)
    assert cache.lookup(OTHER) is None


def test_a_lookup_in_a_missing_root_is_a_miss_and_makes_nothing(tmp_path):
    cache = SharedCache(str(tmp_path / "nowhere"))
    assert cache.lookup(KEY) is None
    assert not (tmp_path / "nowhere").exists()


def test_the_first_store_makes_the_root(work, tmp_path):
    cache = SharedCache(str(tmp_path / "new" / "cache"))
    store_one(cache, KEY, 10)
    assert cache.lookup(KEY) is not None


def test_a_root_that_is_a_file_makes_store_raise_naming_it(work, tmp_path):
    (tmp_path / "file").write_text("")
    cache = SharedCache(str(tmp_path / "file"))
    write("a", b"x")
    with pytest.raises(OSError) as e:
        cache.store(KEY, "r", [("a", "h")])
    assert str(tmp_path / "file") in str(e.value.filename)
    assert cache.lookup(KEY) is None


def test_the_manifest_names_no_absolute_path_and_another_checkout_restores(work, cache, tmp_path,
                                                                           monkeypatch):
    write("out/a", b"shared")
    cache.store(KEY, "r", [("out/a", "h")])
    manifest = Path(cache.root, "entries", KEY[:2], KEY, "manifest.json").read_text()
    assert str(tmp_path) not in manifest
    other = tmp_path / "checkout2"
    other.mkdir()
    monkeypatch.chdir(other)
    cache.restore(cache.lookup(KEY), ["out/a"])
    assert (other / "out/a").read_bytes() == b"shared"


# an entry stored once ------------------------------------------------------------


def test_storing_an_existing_key_returns_false_and_keeps_the_first(work, cache):
    write("a", b"first")
    assert cache.store(KEY, "r", [("a", "h1")])
    write("a", b"second")
    assert cache.store(KEY, "r", [("a", "h2")]) is False
    entry = cache.lookup(KEY)
    assert entry.files[0].digest == "h1"
    cache.restore(entry, ["b"])
    assert Path("b").read_bytes() == b"first"
    assert leftovers(cache) == []


def test_an_entry_that_appears_during_a_store_wins(work, cache, monkeypatch):
    """Another process publishes the key while this store copies: the rename
    fails, this store returns False and leaves nothing behind."""
    write("a", b"mine")
    write("theirs", b"theirs")
    copy = shared_cache._copy

    def copy_while_another_stores(src, dst, stored):
        monkeypatch.setattr(shared_cache, "_copy", copy)
        assert SharedCache(cache.root).store(KEY, "r", [("theirs", "h-theirs")])
        return copy(src, dst, stored)

    monkeypatch.setattr(shared_cache, "_copy", copy_while_another_stores)
    assert cache.store(KEY, "r", [("a", "h-mine")]) is False
    assert cache.lookup(KEY).files[0].digest == "h-theirs"
    assert leftovers(cache) == []


STORE_SCRIPT = """
import os, sys, time
from flow.engine.run.shared_cache import SharedCache
root, ready, go = sys.argv[1:4]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
print(SharedCache(root).store(sys.argv[4], "r", [("big.bin", "h-big"), ("d", "h-d")]))
"""


def test_two_processes_storing_one_key_leave_one_complete_entry(work, cache, tmp_path):
    write("big.bin", os.urandom(4 << 20))
    for i in range(50):
        write(f"d/{i % 5}/{i}", os.urandom(1000))
    procs = [subprocess.Popen([sys.executable, "-c", STORE_SCRIPT, cache.root,
                               str(tmp_path / f"ready{i}"), str(tmp_path / "go"), KEY],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in range(2)), what="both storers")
    (tmp_path / "go").touch()
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sorted(out.strip() for out, _ in results) == ["False", "True"]
    assert os.listdir(os.path.join(cache.root, "entries", KEY[:2])) == [KEY]
    assert leftovers(cache) == []
    cache.restore(cache.lookup(KEY), ["back.bin", "back"])
    assert Path("back.bin").read_bytes() == Path("big.bin").read_bytes()
    assert tree("back") == tree("d")


# never half an entry ----------------------------------------------------------------


def test_an_entry_still_being_built_in_tmp_is_not_found(work, cache):
    store_one(cache, OTHER, 10)
    half = Path(cache.tmp, "store-half")
    half.mkdir()
    (half / "0").write_bytes(b"partial")
    (half / "manifest.json").write_text(
        f'{{"version": 1, "key": "{KEY}", "rule": "r", "created": 0, "files": []}}')
    assert cache.lookup(KEY) is None


def test_a_final_directory_without_a_manifest_is_not_found(work, cache):
    final = Path(cache.root, "entries", KEY[:2], KEY)
    final.mkdir(parents=True)
    (final / "0").write_bytes(b"partial")
    assert cache.lookup(KEY) is None
    assert cache.stats().entries == 0


def test_a_torn_manifest_is_a_miss(work, cache):
    store_one(cache, KEY, 10)
    manifest = Path(cache.root, "entries", KEY[:2], KEY, "manifest.json")
    manifest.write_text(manifest.read_text()[:20])
    assert cache.lookup(KEY) is None


def test_restore_writes_nothing_when_a_stored_file_vanished(work, cache):
    write("a", b"aaa")
    write("b", b"bbb")
    cache.store(KEY, "r", [("a", "h-a"), ("b", "h-b")])
    entry = cache.lookup(KEY)
    os.unlink(os.path.join(entry.directory, "1"))  # (as a prune elsewhere might, mid-restore)
    with pytest.raises(OSError):
        cache.restore(entry, ["out/a", "out/b"])
    assert sorted(os.listdir("out")) == []  # neither output, nor a temporary one


def test_restore_of_an_entry_discarded_meanwhile_raises_and_writes_nothing(work, cache):
    write("a", b"aaa")
    cache.store(KEY, "r", [("a", "h")])
    entry = cache.lookup(KEY)
    SharedCache(cache.root).discard(KEY)
    with pytest.raises(OSError):
        cache.restore(entry, ["out/a"])
    assert not os.path.lexists("out/a")
    assert not os.path.lexists("out/.a.flow-tmp")


# read-only entries, and their removal ------------------------------------------------


def test_stored_files_and_directories_are_read_only(work, cache):
    write("d/sub/f", b"x")
    cache.store(KEY, "r", [("d", "h")])
    stored = Path(cache.lookup(KEY).directory, "0")
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o555
    assert stat.S_IMODE(os.stat(stored / "sub").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(stored / "sub/f").st_mode) == 0o444


def test_discard_removes_the_entry_read_only_tree_and_all(work, cache):
    write("d/sub/f", b"x")
    cache.store(KEY, "r", [("d", "h")])
    cache.discard(KEY)
    assert cache.lookup(KEY) is None
    assert os.listdir(os.path.join(cache.root, "entries", KEY[:2])) == []
    assert leftovers(cache) == []


def test_discard_of_a_missing_entry_is_no_error(work, cache):
    cache.discard(KEY)


DISCARD_SCRIPT = """
import sys
from flow.engine.run.shared_cache import SharedCache
SharedCache(sys.argv[1]).discard(sys.argv[2])
"""


def test_a_user_bound_by_file_modes_can_discard_a_read_only_tree(work, cache):
    write("d/sub/deeper/f", b"x")
    cache.store(KEY, "r", [("d", "h")])
    prefix = _DROP_OVERRIDE if os.geteuid() == 0 else []
    done = subprocess.run([*prefix, sys.executable, "-c", DISCARD_SCRIPT, cache.root, KEY],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert cache.lookup(KEY) is None
    assert leftovers(cache) == []


# stats and prune ----------------------------------------------------------------------


def test_stats_count_entries_bytes_rules_and_use_times(work, cache):
    store_one(cache, "aa01", 100, rule="train")
    store_one(cache, "aa02", 300, rule="train")
    store_one(cache, "bb01", 50, rule="plot")
    for key, when in (("aa01", 1000.0), ("aa02", 3000.0), ("bb01", 2000.0)):
        used_at(cache, key, when)
    s = cache.stats()
    assert (s.entries, s.bytes) == (3, 450)
    assert s.rules == {"train": (2, 400), "plot": (1, 50)}
    assert (s.oldest_use, s.newest_use) == (1000.0, 3000.0)


def test_stats_of_a_missing_root_are_empty(tmp_path):
    s = SharedCache(str(tmp_path / "nowhere")).stats()
    assert (s.entries, s.bytes, s.rules, s.oldest_use) == (0, 0, {}, None)


def test_prune_removes_the_least_recently_used_first_and_stops_at_the_bound(work, cache):
    for key, when in (("aa01", 3000.0), ("aa02", 1000.0), ("aa03", 2000.0)):
        store_one(cache, key, 1000)
        used_at(cache, key, when)
    assert cache.prune(2000) == (1, 1000)
    assert cache.lookup("aa02") is None
    assert cache.lookup("aa01") is not None and cache.lookup("aa03") is not None
    assert leftovers(cache) == []


def test_a_lookup_counts_as_a_use(work, cache):
    for key, when in (("aa01", 1000.0), ("aa02", 2000.0)):
        store_one(cache, key, 1000)
        used_at(cache, key, when)
    assert cache.lookup("aa01") is not None
    assert cache.prune(1000) == (1, 1000)
    assert cache.lookup("aa01") is not None
    assert cache.lookup("aa02") is None


def test_prune_under_the_bound_removes_nothing(work, cache):
    store_one(cache, KEY, 1000)
    assert cache.prune(1000) == (0, 0)
    assert cache.lookup(KEY) is not None


def test_prune_removes_old_leftovers_and_keeps_young_ones(work, cache):
    store_one(cache, KEY, 10)
    old_store = Path(cache.tmp, "store-old")
    (old_store / "0").mkdir(parents=True)
    (old_store / "0" / "f").write_bytes(b"x")
    os.chmod(old_store / "0", 0o555)
    young = Path(cache.tmp, "store-young")
    young.mkdir()
    broken = Path(cache.root, "entries", OTHER[:2], OTHER)  # a final directory with no manifest
    broken.mkdir(parents=True)
    hours_ago = time.time() - 2 * 3600
    for path in (old_store, broken):
        os.utime(path, (hours_ago, hours_ago))
    assert cache.prune(10**9) == (0, 0)
    assert leftovers(cache) == ["store-young"]
    assert not broken.exists()
    assert cache.lookup(KEY) is not None


# the command ------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("123456", 123456), ("500M", 500 << 20), ("10G", 10 << 30), ("2GiB", 2 << 30),
    ("1.5T", int(1.5 * 2**40)), ("64kb", 64 << 10), ("0", 0),
])
def test_a_size_reads_bytes_and_units_of_1024(text, expected):
    assert Size().convert(text, None, None) == expected


@pytest.mark.parametrize("text", ["", "G", "10X", "-5", "1.2.3", "10 GB extra"])
def test_a_bad_size_is_refused(text):
    with pytest.raises(click.BadParameter, match="is not a size"):
        Size().convert(text, None, None)


def filled_cache(root: Path, work: Path) -> SharedCache:
    """Three entries of 1 KiB: aa01 (train, used last), aa02 (train, used first), bb01 (plot)."""
    cache = SharedCache(str(root))
    uses = (("aa01", "train", 3000.0), ("aa02", "train", 1000.0), ("bb01", "plot", 2000.0))
    for key, rule, when in uses:
        write(str(work / key), b"x" * 1024)
        assert cache.store(key, rule, [(str(work / key), "h")])
        used_at(cache, key, when)
    return cache


def test_cache_stats_reads_flow_cache_from_the_environment(project, tmp_path):
    from flow.engine.run.timeline import when_text

    filled_cache(tmp_path / "cache", project.root)
    r = project.flow("cache", "stats", env={"FLOW_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.output
    lines = r.stdout.splitlines()
    assert "entries  3" in lines
    assert "size     3.0 KB" in lines
    assert f"used     {when_text(1000.0)} (oldest) to {when_text(3000.0)} (newest)" in lines
    assert [ln.split() for ln in lines[lines.index("") + 1:]] == [
        ["RULE", "ENTRIES", "SIZE"], ["train", "2", "2.0", "KB"], ["plot", "1", "1.0", "KB"]]


def test_cache_stats_takes_the_cache_option_over_the_environment(project, tmp_path):
    filled_cache(tmp_path / "cache", project.root)
    r = project.flow("cache", "stats", "--cache", str(tmp_path / "cache"),
                     env={"FLOW_CACHE": str(tmp_path / "empty")})
    assert r.returncode == 0, r.output
    assert "entries  3" in r.stdout.splitlines()


def test_cache_commands_without_a_cache_say_how_to_give_one(project):
    for args in (("cache", "stats"), ("cache", "prune", "--max-size", "1G")):
        r = project.flow(*args, env={"FLOW_CACHE": ""})
        assert r.returncode == 2
        assert "no cache directory given" in r.stderr
        assert "--cache DIR" in r.stderr and "FLOW_CACHE" in r.stderr
        assert "Traceback" not in r.stderr


def test_cache_prune_removes_the_least_recently_used_down_to_the_size(project, tmp_path):
    cache = filled_cache(tmp_path / "cache", project.root)
    r = project.flow("cache", "prune", "--max-size", "2K", "--cache", str(tmp_path / "cache"))
    assert r.returncode == 0, r.output
    assert "removed 1 entry, freed 1.0 KB" in r.stdout
    assert cache.lookup("aa02") is None
    assert cache.lookup("aa01") is not None and cache.lookup("bb01") is not None


def test_cache_prune_removes_read_only_trees_for_a_user_bound_by_file_modes(project, tmp_path):
    write(str(project.root / "d/sub/deeper/f"), b"x")
    cache = SharedCache(str(tmp_path / "cache"))
    cache.store(KEY, "r", [(str(project.root / "d"), "h")])
    r = project.flow("cache", "prune", "--max-size", "0", env={"FLOW_CACHE": cache.root},
                     obey_permissions=True)
    assert r.returncode == 0, r.output
    assert "removed 1 entry" in r.stdout
    assert cache.stats().entries == 0
    assert leftovers(cache) == []


def test_cache_prune_refuses_a_bad_size(project, tmp_path):
    r = project.flow("cache", "prune", "--max-size", "lots", "--cache", str(tmp_path))
    assert r.returncode == 2
    assert "Invalid value for '--max-size'" in r.stderr
    assert "500M, 10G, 2GiB, 1.5T" in r.stderr
    assert "Traceback" not in r.stderr


def test_cache_stats_of_a_file_is_an_error(project, tmp_path):
    (tmp_path / "f").write_text("")
    r = project.flow("cache", "stats", "--cache", str(tmp_path / "f"))
    assert r.returncode == 2
    assert "not a directory" in r.stderr
