"""``flow run --cache DIR``: job results shared between working directories
through a content-addressed cache (the store itself: test_shared_cache.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import FLOW, Project

PIPELINE = """
rule all:
    input: "sum.txt", "tree"
rule make:
    output: "n/{i}.txt"
    log: "logs/{i}.log"
    shell: "echo {wildcards.i} > {output}; echo made {wildcards.i} > {log}"
rule sum:
    input: expand("n/{i}.txt", i=[1, 2, 3])
    output: "sum.txt"
    run:
        open(output[0], "w").write(str(sum(int(open(p).read()) for p in input)))
rule tree:
    output: directory("tree")
    shell: "mkdir -p tree/a && echo leaf > tree/a/b"
"""


def _checkout(root: Path, name: str, flowfile: str = PIPELINE) -> Project:
    p = Project(root / name)
    p.root.mkdir()
    p.flowfile(flowfile)
    return p


def _files(p: Project) -> dict[str, bytes]:
    return {str(f.relative_to(p.root)): f.read_bytes() for f in sorted(p.root.rglob("*"))
            if f.is_file() and ".flow" not in f.parts and f.name != "Flowfile"}


def test_a_second_working_directory_runs_no_job_and_gets_identical_files(tmp_path):
    cache = str(tmp_path / "cache")
    first, second = _checkout(tmp_path, "first"), _checkout(tmp_path, "second")
    assert len(first.ran("--cache", cache)) == 5
    r = second.run("--cache", cache)
    assert "0 jobs ran, 5 restored from the shared cache" in r.stderr
    assert _files(second) == _files(first)
    assert "nothing to do" in second.run().stderr  # (restored outputs are recorded as flow's own)
    assert _attempts(second) == 0  # (but nothing ran there: no attempt in its history)


def test_the_cache_comes_from_flow_cache_in_the_environment(tmp_path):
    env = {"FLOW_CACHE": str(tmp_path / "cache")}
    _checkout(tmp_path, "first").run(env=env)
    assert "5 restored from the shared cache" in _checkout(tmp_path, "second").run(env=env).stderr


def test_an_entry_that_does_not_match_its_stored_hash_is_removed_said_and_not_used(tmp_path):
    cache = tmp_path / "cache"
    _checkout(tmp_path, "first").run("--cache", str(cache))
    for manifest in cache.rglob("manifest.json"):
        if '"rule": "sum"' in manifest.read_text() or '"rule":"sum"' in manifest.read_text():
            damaged = manifest.parent / "0"
    damaged.chmod(0o644)
    damaged.write_text("999")
    second = _checkout(tmp_path, "second")
    r = second.run("--cache", str(cache))
    assert "does not match the hash stored with it" in r.stderr and "sum.txt" in r.stderr
    assert second.read("sum.txt") == "6"  # it ran instead
    assert "1 job ran, 4 restored" in r.stderr


def test_rules_with_cache_false_or_named_by_nocache_are_neither_stored_nor_restored(tmp_path):
    flowfile = """
        nocache: listed
        rule all:
            input: "kept.txt", "own.txt", "listed.txt"
        rule kept:
            output: "kept.txt"
            shell: "echo kept > {output}"
        rule own:
            output: "own.txt"
            cache: False
            shell: "echo own > {output}"
        rule listed:
            output: "listed.txt"
            shell: "echo listed > {output}"
    """
    cache = str(tmp_path / "cache")
    _checkout(tmp_path, "first", flowfile).run("--cache", cache)
    second = _checkout(tmp_path, "second", flowfile)
    r = second.run("--cache", cache)
    assert "cached kept" in r.stderr
    assert "2 jobs ran, 1 restored" in r.stderr


def test_jobs_with_a_temp_output_are_not_stored(tmp_path):
    flowfile = """
        rule all:
            input: "final.txt"
        rule step:
            output: temp("step.txt")
            shell: "echo step > {output}"
        rule final:
            input: "step.txt"
            output: "final.txt"
            shell: "cat {input} > {output}"
    """
    cache = tmp_path / "cache"
    _checkout(tmp_path, "first", flowfile).run("--cache", str(cache))
    rules = [m.read_text() for m in cache.rglob("manifest.json")]
    assert len(rules) == 1 and "final" in rules[0]


def test_a_failed_job_stores_nothing(tmp_path):
    cache = tmp_path / "cache"
    p = _checkout(tmp_path, "first", """
        rule bad:
            output: "bad.txt"
            shell: "echo half > {output}; exit 1"
    """)
    assert p.flow("run", "--cache", str(cache)).returncode == 1
    assert not list(cache.rglob("manifest.json"))


def test_two_runs_storing_the_same_results_at_once_leave_one_complete_entry_each(tmp_path):
    cache = str(tmp_path / "cache")
    checkouts = [_checkout(tmp_path, name) for name in ("first", "second")]
    procs = [subprocess.Popen([*FLOW, "run", "--cache", cache], cwd=p.root, stderr=subprocess.PIPE, text=True)
             for p in checkouts]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    manifests = list(Path(cache).rglob("manifest.json"))
    assert len(manifests) == 5
    assert not os.listdir(Path(cache) / "tmp")
    third = _checkout(tmp_path, "third")
    assert "5 restored from the shared cache" in third.run("--cache", cache).stderr
    assert _files(third) == _files(checkouts[0])


def test_nocache_naming_no_rule_is_an_error_naming_it(project):
    project.flowfile("""
        nocache: mkae
        rule make:
            output: "x"
            shell: "touch {output}"
    """)
    r = project.flow("run", "-n")
    assert r.returncode == 2
    assert "nocache: names `mkae`" in r.stderr and "make" in r.stderr and "Flowfile:" in r.stderr


def test_cache_takes_true_false_or_omit_software(project):
    project.flowfile("""
        rule make:
            output: "x"
            cache: "sometimes"
            shell: "touch {output}"
    """)
    r = project.flow("run", "-n")
    assert r.returncode == 2 and "'sometimes'" in r.stderr and "omit-software" in r.stderr


def test_a_rule_without_outputs_is_never_restored_its_action_is_its_effect(tmp_path):
    flowfile = """
        rule all:
            shell: "echo deployed >> deploy.log"
    """
    cache = str(tmp_path / "cache")
    _checkout(tmp_path, "first", flowfile).run("--cache", cache)
    second = _checkout(tmp_path, "second", flowfile)
    second.run("--cache", cache)
    assert second.read("deploy.log") == "deployed\n"


def test_a_job_with_an_ancient_input_is_not_cached_its_content_is_not_in_the_key(tmp_path):
    flowfile = """
        rule copy:
            input: ancient("ref.txt")
            output: "copy.txt"
            shell: "cat {input} > {output}"
    """
    cache = str(tmp_path / "cache")
    first, second = _checkout(tmp_path, "first", flowfile), _checkout(tmp_path, "second", flowfile)
    first.write("ref.txt", "A\n")
    second.write("ref.txt", "B\n")
    first.run("--cache", cache)
    second.run("--cache", cache)
    assert second.read("copy.txt") == "B\n"


def test_forced_jobs_run_instead_of_being_restored(tmp_path):
    cache = str(tmp_path / "cache")
    first = _checkout(tmp_path, "first")
    first.run("--cache", cache)
    assert "5 jobs ran" in first.run("--cache", cache, "-F").stderr


def test_an_entry_holds_the_jobs_logs_so_other_log_paths_are_another_entry(tmp_path):
    one_log = PIPELINE
    two_logs = PIPELINE.replace('log: "logs/{i}.log"', 'log: "logs/{i}.log", "logs/{i}.more"')
    cache = str(tmp_path / "cache")
    _checkout(tmp_path, "first", one_log).run("--cache", cache)
    second = _checkout(tmp_path, "second", two_logs)
    assert "cached make" not in second.run("--cache", cache).stderr
    third = _checkout(tmp_path, "third", two_logs)
    assert "5 restored from the shared cache" in third.run("--cache", cache).stderr


def test_a_cache_that_is_a_file_is_refused_with_exit_2(tmp_path):
    (tmp_path / "cache").write_text("")
    r = _checkout(tmp_path, "first").flow("run", "--cache", str(tmp_path / "cache"))
    assert r.returncode == 2 and "not a directory" in r.stderr and "Traceback" not in r.stderr


def _attempts(p: Project) -> int:
    import sqlite3

    db = sqlite3.connect(p.root / ".flow/state.db")
    try:
        return db.execute("SELECT count(*) FROM attempts").fetchone()[0]
    finally:
        db.close()
