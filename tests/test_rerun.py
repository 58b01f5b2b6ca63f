"""When a job runs again (FLOWFILE.md, "When a job runs again"), end to end:
each rule of the contract on real files, with the real ``flow`` command.

A job's key is a content hash of its action, params, input paths and
contents, and output paths; a job runs when an output is missing, not made by
flow or changed since, or when its key changed. Tests compare the exact set of
jobs a run ran (``project.ran``) with the set the contract predicts."""

from __future__ import annotations

import os
import sqlite3
import stat
import time

import pytest

# A small pipeline: two samples made upper case, combined; an unrelated side job.
PIPELINE = """\
SAMPLES = ["a", "b"]

rule all:
    input: "out/combined.txt", "out/other.txt"

rule upper:
    input: "src/{s}.txt"
    output: "out/{s}.upper"
    shell: "tr a-z A-Z < {input} > {output}"

rule combine:
    input: expand("out/{s}.upper", s=SAMPLES)
    output: "out/combined.txt"
    shell: "cat {input} > {output}"

rule other:
    input: "src/other.txt"
    output: "out/other.txt"
    shell: "cp {input} {output}"
"""

ALL_JOBS = ["combine", "other", "upper (s=a)", "upper (s=b)"]


def _pipeline(project, text: str = PIPELINE) -> None:
    project.flowfile(text)
    project.write("src/a.txt", "alpha\n")
    project.write("src/b.txt", "beta\n")
    project.write("src/other.txt", "other\n")
    assert sorted(project.ran("-j", "2")) == ALL_JOBS
    assert project.read("out/combined.txt") == "ALPHA\nBETA\n"


def _utime_later(path) -> None:
    """Give ``path`` a new modification time without touching its content."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_000))


def _reasons(project, *args: str) -> dict[str, str]:
    """``flow run -n``: job label -> reason, leaving out the ``all`` rule, which
    only gathers (a dry run lists it, as Snakemake does, when an input would
    be made)."""
    r = project.run("-n", *args)
    out = {}
    for ln in r.stdout.splitlines():
        if ln.startswith("would run  "):
            label, _, reason = ln[len("would run  "):].partition(": ")
            out[label] = reason
    out.pop("all", None)
    return out


def _would_run(project, *args: str) -> list[str]:
    return sorted(_reasons(project, *args))


# nothing changed ------------------------------------------------------------------------


def test_second_run_does_nothing(project):
    _pipeline(project)
    r = project.run()
    assert [ln for ln in r.stderr.splitlines() if ln.startswith(("run ", "done "))] == []
    assert "nothing to do" in r.stderr
    assert project.would_run() == []


def test_a_run_leaves_usable_stat_cache_entries_for_the_outputs_it_wrote(project):
    # Outputs are hashed right after they are written, within one timestamp tick;
    # such entries are not trusted. Hashed again once the tick has passed, they
    # are, so the next run reads no output again (a no-op stays stat-only).
    _pipeline(project)
    db = sqlite3.connect(project.root / ".flow/state.db")
    entries = dict(db.execute("SELECT path, mtime_ns FROM files").fetchall())
    db.close()
    outputs = ["out/a.upper", "out/b.upper", "out/combined.txt", "out/other.txt"]
    assert {p: entries.get(p) for p in outputs} == {
        p: os.stat(project.root / p).st_mtime_ns for p in outputs}


def test_a_file_rewritten_in_the_tick_it_was_hashed_in_is_hashed_again_before_it_is_trusted(tmp_path):
    from flow.engine.decide.hashing import Hasher, file_digest

    path = tmp_path / "f.txt"
    path.write_text("one\n")
    hasher = Hasher({})
    first = hasher.digest(str(path))  # just written: not trusted yet
    st = os.stat(path)
    path.write_text("two\n")  # the same size, and (as within one tick) the same time
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    hasher.settle()
    size, mtime_ns, _, digest = hasher.cache[str(path)]
    assert digest == file_digest(str(path)) != first
    assert (size, mtime_ns) == (4, st.st_mtime_ns)  # trusted from now on


def test_touching_inputs_without_changing_them_runs_nothing(project):
    _pipeline(project)
    for name in ("src/a.txt", "src/b.txt", "src/other.txt"):
        _utime_later(project.root / name)
    assert project.ran() == []


def test_touching_outputs_without_changing_them_runs_nothing(project):
    _pipeline(project)
    for name in ("out/a.upper", "out/b.upper", "out/combined.txt", "out/other.txt"):
        _utime_later(project.root / name)
    assert project.ran() == []


def test_rewriting_an_input_with_the_same_bytes_runs_nothing(project):
    _pipeline(project)
    time.sleep(0.02)
    project.write("src/a.txt", "alpha\n")  # new inode/mtime, same content
    assert project.ran() == []


# inputs -----------------------------------------------------------------------------


def test_changed_input_reruns_exactly_its_dependants(project):
    _pipeline(project)
    project.write("src/a.txt", "gamma\n")
    assert sorted(project.ran()) == ["combine", "upper (s=a)"]
    assert project.read("out/combined.txt") == "GAMMA\nBETA\n"
    assert project.ran() == []


def test_changed_input_dry_run_names_the_input_as_reason(project):
    _pipeline(project)
    project.write("src/b.txt", "delta\n")
    reasons = _reasons(project)
    assert sorted(reasons) == ["combine", "upper (s=b)"]
    assert "src/b.txt" in reasons["upper (s=b)"], reasons


def test_early_cutoff_job_writing_same_bytes_does_not_run_its_consumers(project):
    _pipeline(project)
    project.write("src/a.txt", "ALPHA\n")  # upper case of it is unchanged
    assert project.ran() == ["upper (s=a)"]
    assert project.read("out/combined.txt") == "ALPHA\nBETA\n"


def test_early_cutoff_stops_a_longer_chain(project):
    project.flowfile("""\
rule all:
    input: "c.txt"

rule sort:
    input: "src.txt"
    output: "a.txt"
    shell: "sort {input} > {output}"

rule count:
    input: "a.txt"
    output: "b.txt"
    shell: "wc -l < {input} > {output}"

rule final:
    input: "b.txt"
    output: "c.txt"
    shell: "cat {input} {input} > {output}"
""")
    project.write("src.txt", "b\na\nc\n")
    assert sorted(project.ran()) == ["count", "final", "sort"]
    project.write("src.txt", "c\nb\na\n")  # same lines, another order
    assert project.ran() == ["sort"]
    project.write("src.txt", "c\nb\na\nd\n")
    assert sorted(project.ran()) == ["count", "final", "sort"]
    assert project.read("c.txt").split() == ["4", "4"]


# the action and params -------------------------------------------------------------------

ACTION_FLOWFILE = """\
rule all:
    input: "cat.txt", "side.txt"

rule make:
    input: "src/{{s}}.txt"
    output: "made/{{s}}.txt"
{action}

rule cat:
    input: expand("made/{{s}}.txt", s=["a", "b"])
    output: "cat.txt"
    shell: "cat {{input}} > {{output}}"

rule side:
    input: "src/side.txt"
    output: "side.txt"
    shell: "cp {{input}} {{output}}"
"""

SHELL_V1 = '    shell: "cp {input} {output}"'
SHELL_V2 = '    shell: "cat {input} > {output}"'
RUN_V1 = """\
    run:
        with open(input[0]) as f:
            text = f.read()
        with open(output[0], "w") as f:
            f.write(text)
"""
RUN_V2 = """\
    run:
        with open(input[0]) as f:
            text = f.read()
        unused = 1
        with open(output[0], "w") as f:
            f.write(text)
"""
SCRIPT = '    script: "scripts/copy.py"'
SCRIPT_V1 = """\
with open(snakemake.input[0]) as f:
    text = f.read()
with open(snakemake.output[0], "w") as f:
    f.write(text)
"""
PARAMS_V1 = '    params: level=1\n    shell: "cp {input} {output}"'
PARAMS_V2 = '    params: level=2\n    shell: "cp {input} {output}"'


def _action_project(project, action: str, prefix: str = "") -> None:
    project.flowfile(prefix + ACTION_FLOWFILE.format(action=action))
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    project.write("src/side.txt", "side\n")
    project.write("scripts/copy.py", SCRIPT_V1)
    assert sorted(project.ran("-j", "2")) == ["cat", "make (s=a)", "make (s=b)", "side"]


def test_changed_shell_command_reruns_only_that_rules_jobs(project):
    _action_project(project, SHELL_V1)
    project.flowfile(ACTION_FLOWFILE.format(action=SHELL_V2))
    assert "command" in _reasons(project)["make (s=a)"]
    assert sorted(project.ran()) == ["make (s=a)", "make (s=b)"]
    assert project.ran() == []


def test_changed_run_block_reruns_only_that_rules_jobs(project):
    _action_project(project, RUN_V1)
    project.flowfile(ACTION_FLOWFILE.format(action=RUN_V2))
    assert "run: block" in _reasons(project)["make (s=b)"]
    assert sorted(project.ran()) == ["make (s=a)", "make (s=b)"]
    assert project.read("cat.txt") == "a\nb\n"


def test_changed_script_file_reruns_only_that_rules_jobs(project):
    _action_project(project, SCRIPT)
    project.write("scripts/copy.py", "# version 2\n" + SCRIPT_V1)
    assert "script" in _reasons(project)["make (s=a)"]
    assert sorted(project.ran()) == ["make (s=a)", "make (s=b)"]


def test_changed_params_rerun_only_that_rules_jobs(project):
    _action_project(project, PARAMS_V1)
    project.flowfile(ACTION_FLOWFILE.format(action=PARAMS_V2))
    assert "params" in _reasons(project)["make (s=a)"]
    assert sorted(project.ran()) == ["make (s=a)", "make (s=b)"]


def test_params_changed_by_config_override_rerun_that_rules_jobs(project):
    project.write("config.yaml", "level: 1\n")
    _action_project(project, '    params: level=config["level"]\n' + SHELL_V1, prefix='configfile: "config.yaml"\n')
    assert project.ran("--config", "level=1") == []
    assert sorted(project.ran("--config", "level=2")) == ["make (s=a)", "make (s=b)"]


def test_input_path_changed_with_same_content_reruns_the_job(project):
    _pipeline(project)
    project.write("src/other2.txt", "other\n")
    project.flowfile(PIPELINE.replace('input: "src/other.txt"', 'input: "src/other2.txt"'))
    assert project.ran() == ["other"]


def test_moving_a_rule_within_the_flowfile_reruns_nothing(project):
    _action_project(project, RUN_V1)
    text = ACTION_FLOWFILE.format(action=RUN_V1)
    project.flowfile("X = 1\n\n\n" + text)  # the run: block now starts three lines lower
    assert project.ran() == []


@pytest.mark.parametrize("directive", [
    "threads: 2", "resources: mem_mb=100, runtime=5", "priority: 7", 'message: "making {wildcards.s}"',
])
def test_changing_directive_outside_the_key_reruns_nothing(project, directive):
    _action_project(project, SHELL_V1)
    project.flowfile(ACTION_FLOWFILE.format(action=f"    {directive}\n{SHELL_V1}"))
    assert project.would_run() == []
    assert project.ran() == []


# outputs ------------------------------------------------------------------------------


def test_missing_output_reruns_its_job(project):
    _pipeline(project)
    os.remove(project.root / "out/b.upper")
    assert project.ran() == ["upper (s=b)"]  # same bytes again: combine is cut off
    assert project.read("out/b.upper") == "BETA\n"


def test_missing_output_dry_run_reason_says_missing(project):
    _pipeline(project)
    os.remove(project.root / "out/other.txt")
    reasons = _reasons(project)
    assert list(reasons) == ["other"]
    assert "out/other.txt" in reasons["other"] and "missing" in reasons["other"], reasons


def test_output_modified_outside_flow_reruns_its_job(project):
    _pipeline(project)
    project.write("out/a.upper", "TAMPERED\n")
    assert project.ran() == ["upper (s=a)"]
    assert project.read("out/a.upper") == "ALPHA\n"
    assert project.read("out/combined.txt") == "ALPHA\nBETA\n"


def test_output_modified_outside_flow_dry_run_reason_names_it(project):
    _pipeline(project)
    project.write("out/a.upper", "TAMPERED\n")
    reasons = _reasons(project)
    assert "upper (s=a)" in reasons
    assert "out/a.upper" in reasons["upper (s=a)"], reasons
    assert "modified" in reasons["upper (s=a)"], reasons
    assert project.read("out/a.upper") == "TAMPERED\n"


def test_output_rewritten_in_place_with_same_size_reruns_its_job(project):
    # A job's output rewritten in place (same size) a moment later, as a
    # careless editor might: the content differs, so flow must notice.
    _pipeline(project)
    path = project.root / "out/a.upper"
    time.sleep(0.1)
    path.write_text("ALPHX\n")
    assert project.ran() == ["upper (s=a)"]
    assert project.read("out/a.upper") == "ALPHA\n"


def test_existing_output_never_recorded_is_out_of_date(project):
    project.flowfile(PIPELINE)
    project.write("src/a.txt", "alpha\n")
    project.write("src/b.txt", "beta\n")
    project.write("src/other.txt", "other\n")
    project.write("out/other.txt", "stale\n")  # flow did not make it
    reasons = _reasons(project)
    assert "out/other.txt" in reasons["other"], reasons
    assert sorted(project.ran()) == ALL_JOBS
    assert project.read("out/other.txt") == "other\n"


def test_touch_records_existing_outputs_so_next_run_does_nothing(project):
    project.flowfile(PIPELINE)
    for name, text in {"src/a.txt": "alpha\n", "src/b.txt": "beta\n", "src/other.txt": "other\n",
                       "out/a.upper": "made elsewhere a\n", "out/b.upper": "made elsewhere b\n",
                       "out/combined.txt": "combined elsewhere\n", "out/other.txt": "other elsewhere\n"}.items():
        project.write(name, text)
    assert _would_run(project) == ALL_JOBS
    r = project.run("--touch")
    assert not [ln for ln in r.stderr.splitlines() if ln.startswith("done ")], r.stderr
    assert project.would_run() == []
    assert project.ran() == []
    assert project.read("out/combined.txt") == "combined elsewhere\n"


def test_after_touch_a_changed_input_reruns_its_dependants(project):
    project.flowfile(PIPELINE)
    for name, text in {"src/a.txt": "alpha\n", "src/b.txt": "beta\n", "src/other.txt": "other\n",
                       "out/a.upper": "ALPHA\n", "out/b.upper": "BETA\n",
                       "out/combined.txt": "ALPHA\nBETA\n", "out/other.txt": "other\n"}.items():
        project.write(name, text)
    project.run("--touch")
    project.write("src/b.txt", "bravo\n")
    assert sorted(project.ran()) == ["combine", "upper (s=b)"]
    assert project.read("out/combined.txt") == "ALPHA\nBRAVO\n"


# forcing ---------------------------------------------------------------------------------


def test_forceall_runs_every_job(project):
    _pipeline(project)
    ran = project.ran("-F")
    assert sorted(ran) == ALL_JOBS  # (the gathering rule `all` has nothing to run)


def test_forcerun_runs_every_job_of_that_rule_and_nothing_upstream(project):
    _pipeline(project)
    ran = project.ran("-R", "upper")
    assert sorted(j for j in ran if j.startswith("upper")) == ["upper (s=a)", "upper (s=b)"]
    assert "other" not in ran
    assert sorted(project.ran("-R", "combine")) == ["combine"]


# temp() ----------------------------------------------------------------------------------

TEMP_FLOWFILE = """\
rule all:
    input: expand("final/{{s}}.txt", s=["a", "b"])

rule mid:
    input: "src/{{s}}.txt"
    output: temp("tmp/{{s}}.mid")
    shell: "tr a-z A-Z < {{input}} > {{output}}"

rule final:
    input: "tmp/{{s}}.mid"
    output: "final/{{s}}.txt"
    shell: "{final}"
"""
FINAL_V1 = "cat {input} {input} > {output}"
FINAL_V2 = "cat {input} > {output}; cat {input} >> {output}"


def _temp_project(project, *args: str) -> None:
    project.flowfile(TEMP_FLOWFILE.format(final=FINAL_V1))
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    assert sorted(project.ran(*args)) == ["final (s=a)", "final (s=b)", "mid (s=a)", "mid (s=b)"]
    assert project.read("final/a.txt") == "A\nA\n"


def test_temp_output_is_deleted_after_its_consumers_finish(project):
    _temp_project(project)
    assert not project.exists("tmp/a.mid")
    assert not project.exists("tmp/b.mid")


def test_deleted_temp_output_causes_no_rerun(project):
    _temp_project(project)
    assert project.would_run() == []
    assert project.ran() == []


def test_temp_output_is_remade_when_a_consumer_must_run_again(project):
    _temp_project(project)
    project.flowfile(TEMP_FLOWFILE.format(final=FINAL_V2))
    assert sorted(project.ran()) == ["final (s=a)", "final (s=b)", "mid (s=a)", "mid (s=b)"]
    assert project.read("final/b.txt") == "B\nB\n"
    assert not project.exists("tmp/a.mid")
    assert project.ran() == []


def test_chain_of_temp_outputs_is_remade_when_the_last_consumer_must_run_again(project):
    project.flowfile("""\
rule d:
    input: "c.tmp"
    output: "d.txt"
    shell: "cat {input} > {output}"

rule c:
    input: "b.tmp"
    output: temp("c.tmp")
    shell: "cat {input} {input} > {output}"

rule b:
    input: "a.txt"
    output: temp("b.tmp")
    shell: "cp {input} {output}"
""")
    project.write("a.txt", "a\n")
    assert sorted(project.ran()) == ["b", "c", "d"]
    assert not project.exists("b.tmp") and not project.exists("c.tmp")
    project.flowfile(project.read("Flowfile").replace('"cat {input} > {output}"', '"cat < {input} > {output}"'))
    r = project.flow("run")
    assert r.returncode == 0, r.output
    assert project.read("d.txt") == "a\na\n"
    assert not project.exists("b.tmp") and not project.exists("c.tmp")


def test_temp_output_changed_input_reruns_producer_and_consumer(project):
    _temp_project(project)
    project.write("src/a.txt", "z\n")
    assert sorted(project.ran()) == ["final (s=a)", "mid (s=a)"]
    assert project.read("final/a.txt") == "Z\nZ\n"
    assert not project.exists("tmp/a.mid")


def test_temp_producer_rerun_with_same_bytes_does_not_run_its_consumer(project):
    _temp_project(project)
    project.write("src/a.txt", "A\n")  # upper case of it is unchanged
    assert project.ran() == ["mid (s=a)"]
    assert not project.exists("tmp/a.mid")
    assert project.ran() == []


def test_notemp_keeps_temp_outputs(project):
    _temp_project(project, "--notemp")
    assert project.read("tmp/a.mid") == "A\n"
    assert project.read("tmp/b.mid") == "B\n"


def test_temp_output_is_kept_until_its_last_consumer_finishes(project):
    project.flowfile("""\
rule all:
    input: "fast.txt", "slow.txt"

rule mid:
    output: temp("shared.tmp")
    shell: "echo shared > {output}"

rule fast:
    input: "shared.tmp"
    output: "fast.txt"
    shell: "cp {input} {output}"

rule slow:
    input: "shared.tmp"
    output: "slow.txt"
    shell: "sleep 0.6; cp {input} {output}"
""")
    assert sorted(project.ran("-j", "2")) == ["fast", "mid", "slow"]
    assert project.read("slow.txt") == "shared\n"
    assert not project.exists("shared.tmp")


# protected(), directory(), ancient() ----------------------------------------------------------


def test_protected_output_becomes_read_only(project):
    project.flowfile("""\
rule p:
    output: protected("p.txt")
    shell: "echo p > {output}"
""")
    assert project.ran() == ["p"]
    mode = os.stat(project.root / "p.txt").st_mode
    assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0, oct(mode)
    assert project.ran() == []


def test_protected_output_is_not_overwritten_when_its_job_must_run_again(project):
    project.flowfile("""\
rule p:
    input: "src.txt"
    output: protected("p.txt")
    shell: "cat {input} > {output}"
""")
    project.write("src.txt", "v1\n")
    assert project.ran() == ["p"]
    project.write("src.txt", "v2\n")
    r = project.flow("run")
    assert r.returncode == 2, r.output  # nothing ran: the user must decide
    assert "protected" in r.stderr, r.stderr
    assert project.read("p.txt") == "v1\n"


DIR_FLOWFILE = """\
rule all:
    input: "listing.txt"

rule split:
    input: "src/words.txt"
    output: directory("parts")
    shell: "mkdir -p {output}; for w in $(cat {input}); do echo $w > {output}/$w.txt; done; echo fixed > {output}/fixed.txt"

rule listing:
    input: directory("parts")
    output: "listing.txt"
    shell: "cat {input}/*.txt > {output}"
"""


def test_directory_output_with_changed_file_inside_reruns_consumers(project):
    project.flowfile(DIR_FLOWFILE)
    project.write("src/words.txt", "x y\n")
    assert sorted(project.ran()) == ["listing", "split"]
    project.write("src/words.txt", "y x\n")  # the same tree again
    assert project.ran() == ["split"]
    project.write("src/words.txt", "x y z\n")  # one more file inside
    assert sorted(project.ran()) == ["listing", "split"]
    assert project.read("listing.txt") == "fixed\nx\ny\nz\n"


def test_directory_output_tampered_inside_reruns_its_job(project):
    project.flowfile(DIR_FLOWFILE)
    project.write("src/words.txt", "x y\n")
    project.ran()
    project.write("parts/x.txt", "tampered\n")
    reasons = _reasons(project)
    assert "parts" in reasons["split"] and "modified" in reasons["split"], reasons
    assert project.ran() == ["split"]
    assert project.read("parts/x.txt") == "x\n"


def test_directory_input_file_changed_inside_reruns_consumer(project):
    project.flowfile("""\
rule listing:
    input: directory("data")
    output: "listing.txt"
    shell: "cat {input}/a/*.txt > {output}"
""")
    project.write("data/a/1.txt", "one\n")
    project.write("data/a/2.txt", "two\n")
    assert project.ran() == ["listing"]
    _utime_later(project.root / "data/a/1.txt")
    assert project.ran() == []
    project.write("data/a/2.txt", "TWO\n")
    assert project.ran() == ["listing"]
    assert project.read("listing.txt") == "one\nTWO\n"


def test_ancient_input_change_never_triggers_a_rerun(project):
    project.flowfile("""\
rule use:
    input: "src/data.txt", ref=ancient("src/ref.txt")
    output: "out.txt"
    shell: "cat {input[0]} {input.ref} > {output}"
""")
    project.write("src/data.txt", "data\n")
    project.write("src/ref.txt", "ref v1\n")
    assert project.ran() == ["use"]
    project.write("src/ref.txt", "ref v2, much longer\n")
    assert project.would_run() == []
    assert project.ran() == []
    assert project.read("out.txt") == "data\nref v1\n"
    project.write("src/data.txt", "data 2\n")  # a normal input still counts
    assert project.ran() == ["use"]


# dry run -----------------------------------------------------------------------------------


def test_dry_run_lists_every_job_with_a_reason_and_runs_nothing(project):
    project.flowfile(PIPELINE)
    project.write("src/a.txt", "alpha\n")
    project.write("src/b.txt", "beta\n")
    project.write("src/other.txt", "other\n")
    reasons = _reasons(project)
    assert sorted(reasons) == ALL_JOBS
    assert all(reasons[j] for j in ALL_JOBS), reasons
    assert "missing" in reasons["upper (s=a)"], reasons
    assert not (project.root / "out").exists()
    assert sorted(project.ran()) == ALL_JOBS


def test_dry_run_after_a_change_lists_the_job_and_its_dependants_only(project):
    _pipeline(project)
    project.write("src/other.txt", "changed\n")
    assert _would_run(project) == ["other"]
    assert project.read("out/other.txt") == "other\n"
    assert project.ran() == ["other"]


# flow clean ------------------------------------------------------------------------------------


def test_clean_removes_recorded_outputs_and_keeps_everything_else(project):
    _pipeline(project)
    project.write("out/notes.txt", "mine\n")
    r = project.flow("clean")
    assert r.returncode == 0, r.output
    for name in ("out/a.upper", "out/b.upper", "out/combined.txt", "out/other.txt"):
        assert not project.exists(name), name
    for name in ("src/a.txt", "src/b.txt", "src/other.txt", "Flowfile"):
        assert project.exists(name), name
    assert project.read("out/notes.txt") == "mine\n"
    assert sorted(project.ran()) == ALL_JOBS


def test_clean_dry_run_removes_nothing(project):
    _pipeline(project)
    r = project.flow("clean", "-n")
    assert r.returncode == 0, r.output
    assert "out/combined.txt" in r.output
    for name in ("out/a.upper", "out/b.upper", "out/combined.txt", "out/other.txt"):
        assert project.exists(name), name
    assert project.ran() == []


def test_clean_keeps_an_output_changed_since_flow_made_it(project):
    _pipeline(project)
    project.write("out/combined.txt", "edited by hand\n")
    r = project.flow("clean")
    assert r.returncode == 0, r.output
    assert project.read("out/combined.txt") == "edited by hand\n"
    assert not project.exists("out/a.upper")


def test_clean_keeps_protected_outputs_unless_forced(project):
    project.flowfile("""\
rule p:
    output: protected("p.txt"), "q.txt"
    shell: "echo p > {output[0]}; echo q > {output[1]}"
""")
    assert project.ran() == ["p"]
    r = project.flow("clean")
    assert r.returncode == 0, r.output
    assert project.read("p.txt") == "p\n"
    assert not project.exists("q.txt")
    r = project.flow("clean", "--force")
    assert r.returncode == 0, r.output
    assert not project.exists("p.txt")


def test_clean_never_follows_a_symlinked_directory_out_of_the_working_directory(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "a.upper").write_text("ALPHA\n")  # what flow made, byte for byte, but not flow's
    _pipeline(project)
    for name in os.listdir(project.root / "out"):
        os.remove(project.root / "out" / name)
    os.rmdir(project.root / "out")
    os.symlink(outside, project.root / "out")
    r = project.flow("clean")
    assert r.returncode == 0, r.output
    assert (outside / "a.upper").read_text() == "ALPHA\n"
    assert "kept out/a.upper: it lies outside" in r.stdout


def test_clean_removes_a_symlink_output_and_not_what_it_points_to(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "target.txt").write_text("not flow's\n")
    project.flowfile(f"""\
rule link:
    output: "link.txt"
    shell: "ln -s {outside / 'target.txt'} {{output}}"
""")
    project.run()
    assert os.path.islink(project.root / "link.txt")
    r = project.flow("clean")
    assert r.returncode == 0, r.output
    assert not os.path.lexists(project.root / "link.txt")
    assert (outside / "target.txt").read_text() == "not flow's\n"


def test_clean_keeps_a_symlink_the_user_put_in_place_of_an_output(project):
    project.flowfile("""\
rule a:
    output: "out.txt"
    shell: "echo made by flow > {output}"
""")
    project.run()
    project.write("mine.txt", "my own data\n")
    os.remove(project.root / "out.txt")
    os.symlink("mine.txt", project.root / "out.txt")
    r = project.flow("clean")
    assert "kept out.txt: it changed since flow made it" in r.stdout, r.output
    assert os.path.islink(project.root / "out.txt")


# the Flowfile's list of outputs ----------------------------------------------------------------


def test_longer_expand_list_runs_only_the_new_jobs(project):
    _pipeline(project)
    project.write("src/c.txt", "gamma\n")
    project.flowfile(PIPELINE.replace('SAMPLES = ["a", "b"]', 'SAMPLES = ["a", "b", "c"]'))
    assert sorted(project.ran()) == ["combine", "upper (s=c)"]
    assert project.read("out/combined.txt") == "ALPHA\nBETA\nGAMMA\n"


def test_shorter_expand_list_reruns_only_the_gathering_job(project):
    _pipeline(project)
    project.flowfile(PIPELINE.replace('SAMPLES = ["a", "b"]', 'SAMPLES = ["b"]'))
    assert project.ran() == ["combine"]
    assert project.read("out/combined.txt") == "BETA\n"


def test_touch_with_forceall_records_outputs_and_runs_nothing(project):
    project.flowfile("""\
rule a:
    input: "in.txt"
    output: "out.txt"
    shell: "echo ran >> runs.txt; cp {input} {output}"
""")
    project.write("in.txt", "x\n")
    project.write("out.txt", "x\n")
    project.run("--touch", "-F")
    assert not project.exists("runs.txt")
    assert project.ran() == []


def test_temp_files_gathered_by_the_target_rule_are_kept(project):
    # As in Snakemake: `rule all: input: ...` names what the user wants to see.
    project.flowfile("""\
rule all:
    input: "t.txt"

rule t:
    input: "in.txt"
    output: temp("t.txt")
    shell: "cp {input} {output}"
""")
    project.write("in.txt", "x\n")
    project.run()
    assert project.read("t.txt") == "x\n"
    assert project.ran() == []


def test_clean_follows_the_workdir_of_the_flowfile(project):
    project.flowfile("""\
workdir: "data"

rule a:
    output: "out.txt"
    shell: "echo made > {output}"
""")
    project.run()
    assert project.exists("data/out.txt")
    r = project.flow("clean")
    assert r.returncode == 0, r.output
    assert not project.exists("data/out.txt")


def test_every_consumer_waits_for_a_temp_file_being_remade(project):
    # Two consumers need the same deleted temp() files; the second one decided
    # must not start before the producers have run again.
    project.flowfile("""\
rule all:
    input: "out/x.txt", "out/y.txt"

rule make_temp:
    output: temp("tmp/{n}.txt")
    shell: "sleep 0.3; echo {wildcards.n} > {output}"

rule consume:
    input: "tmp/1.txt", "tmp/2.txt", "tmp/3.txt"
    output: "out/{k}.txt"
    params: v=1
    shell: "cat {input} > {output}"
""")
    project.run("-j", "2")
    project.flowfile(project.read("Flowfile").replace("v=1", "v=2"))
    assert sorted(project.ran("-j", "2")) == [
        "consume (k=x)", "consume (k=y)", "make_temp (n=1)", "make_temp (n=2)", "make_temp (n=3)"]
    assert project.read("out/x.txt") == project.read("out/y.txt") == "1\n2\n3\n"
    assert not project.exists("tmp/1.txt")


def test_dry_run_names_the_real_reason_even_when_an_upstream_job_would_run(project):
    project.flowfile("""\
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cp {input} {output}"

rule a:
    input: "src.txt"
    output: "a.txt"
    shell: "cp {input} {output}"
""")
    project.write("src.txt", "1\n")
    project.run()
    project.write("src.txt", "2\n")
    project.flowfile(project.read("Flowfile").replace('"cp {input} {output}"', '"cat {input} > {output}"', 1))
    r = project.run("-n")
    assert "would run  a: input src.txt changed" in r.stdout, r.output
    assert "would run  b: the command changed" in r.stdout, r.output


def test_rule_without_action_records_the_users_file_and_never_removes_it(project):
    project.flowfile("""\
rule all:
    input: "b.txt"

rule provided:
    output: "data.txt"

rule b:
    input: "data.txt"
    output: "b.txt"
    shell: "cat {input} > {output}"
""")
    project.write("data.txt", "precious\n")
    assert project.ran() == ["b"]
    assert project.read("data.txt") == "precious\n" and project.read("b.txt") == "precious\n"
    assert project.ran() == []


def test_rule_without_action_whose_output_is_missing_says_so(project):
    project.flowfile("""\
rule provided:
    output: "data.txt"
""")
    r = project.flow("run")
    assert r.returncode == 2
    assert "has no action" in r.stderr and "data.txt" in r.stderr, r.stderr


def test_threads_in_a_command_are_not_in_the_key(project):
    project.flowfile("""\
rule a:
    output: "out.txt"
    threads: 4
    shell: "echo {threads} > /dev/null; echo done > {output}"
""")
    project.run("-j", "2")
    assert project.would_run("-j", "1") == []


def test_producer_remade_for_a_temp_file_waits_for_a_running_reader_of_its_other_output(project):
    # x reads u.txt while it runs; a makes u.txt and the temp t.txt that y
    # needs back later. Remaking a must not rewrite u.txt under x.
    project.flowfile("""\
rule all:
    input: "x.txt", "y.txt"

rule a:
    input: "src.txt"
    output: temp("t.txt"), "u.txt"
    shell: "sleep 1; cat {input} > {output[0]}; cat {input} > {output[1]}"

rule x:
    input: "u.txt", "ox.txt"
    output: "x.txt"
    priority: 10
    shell: "sleep 0.6; cat {input} > {output}"

rule slow_oy:
    input: "src2.txt"
    output: "oy.txt"
    shell: "sleep 0.2; cat {input} > {output}"

rule y:
    input: "t.txt", "oy.txt"
    output: "y.txt"
    shell: "cat {input} > {output}"
""")
    project.write("src.txt", "s\n")
    project.write("src2.txt", "1\n")
    project.write("ox.txt", "1\n")
    project.run("-j", "3")
    project.write("ox.txt", "2\n")
    project.write("src2.txt", "2\n")
    project.run("-j", "3")
    assert project.read("x.txt") == "s\n2\n"
    assert project.read("y.txt") == "s\n2\n"


def test_an_emptied_temp_directory_stays_while_a_running_job_writes_into_it(project):
    project.flowfile("""\
rule all:
    input: "b.txt", "tmp/c.txt"

rule a:
    output: temp("tmp/a.txt")
    shell: "echo a > {output}"

rule b:
    input: "tmp/a.txt"
    output: "b.txt"
    shell: "cat {input} > {output}"

rule c:
    output: "tmp/c.txt"
    shell: "sleep 1; echo c > {output}"
""")
    project.run("-j", "3")
    assert project.read("tmp/c.txt") == "c\n" and not project.exists("tmp/a.txt")


def test_clean_never_removes_files_a_rule_without_action_provides(project):
    project.flowfile("""\
rule all:
    input: "b.txt"

rule provided:
    output: temp("raw.csv")

rule b:
    input: "raw.csv"
    output: "b.txt"
    shell: "cat {input} > {output}"
""")
    project.write("raw.csv", "mine\n")
    project.run()
    assert project.read("raw.csv") == "mine\n"  # not deleted as a temp() file either
    assert project.flow("clean").returncode == 0
    assert project.read("raw.csv") == "mine\n" and not project.exists("b.txt")


TEMP_CHAIN = """\
rule all:
    input: "d.txt"

rule a:
    output: temp("a.txt")
    shell: "echo A > {output}"

rule b:
    input: "a.txt"
    output: temp("b.txt")
    shell: "cat {input} > {output}"

rule c:
    input: "b.txt"
    output: temp("c.txt")
    shell: "cat {input} > {output}"

rule d:
    input: "c.txt"
    output: "d.txt"
    shell: "cat {input} > {output}"
"""


def test_temp_chain_is_remade_when_its_head_reran_with_the_same_bytes(project):
    # a runs again but writes the same bytes, so b is up to date; d must run
    # and needs c and b back, which need a.txt: it must not be gone by then.
    project.flowfile(TEMP_CHAIN)
    project.run("-j", "2")
    text = project.read("Flowfile")
    text = text.replace('"echo A > {output}"', '"echo A > {output}; true"')
    project.flowfile(text.replace('output: "d.txt"\n    shell: "cat {input} > {output}"',
                                  'output: "d.txt"\n    shell: "cat < {input} > {output}"'))
    assert sorted(project.ran("-j", "2")) == ["a", "b", "c", "d"]
    assert project.read("d.txt") == "A\n"
    assert not any(project.exists(f) for f in ("a.txt", "b.txt", "c.txt"))


def test_temp_file_read_by_jobs_known_only_after_a_checkpoint_is_kept_for_them(project):
    project.flowfile("""\
rule all:
    input: "agg.txt"

rule pre:
    output: temp("pre.txt")
    shell: "echo P > {output}"

checkpoint split:
    input: "pre.txt"
    output: directory("parts")
    shell: "mkdir -p {output}; echo 1 > {output}/1.txt; echo 2 > {output}/2.txt"

rule proc:
    input: "parts/{i}.txt", "pre.txt"
    output: "proc/{i}.txt"
    shell: "cat {input} > {output}"

rule agg:
    input: expand("proc/{i}.txt", i=glob_wildcards("parts/{i}.txt").i)
    output: "agg.txt"
    shell: "cat {input} > {output}"
""")
    project.run("-j", "2")
    assert project.read("agg.txt") == "1\nP\n2\nP\n"
    assert not project.exists("pre.txt")


def test_temp_output_of_a_checkpoint_is_deleted_after_its_consumers(project):
    project.flowfile("""\
rule all:
    input: "agg.txt", "use.txt"

checkpoint split:
    output: directory("parts"), temp("list.tmp")
    shell: "mkdir -p {output[0]}; echo 1 > {output[0]}/1.txt; ls {output[0]} > {output[1]}"

rule use:
    input: "list.tmp"
    output: "use.txt"
    shell: "sleep 0.3; cat {input} > {output}"

rule agg:
    input: expand("parts/{i}.txt", i=glob_wildcards("parts/{i}.txt").i)
    output: "agg.txt"
    shell: "cat {input} > {output}"
""")
    project.run("-j", "4")
    assert project.read("use.txt") == "1.txt\n"
    assert not project.exists("list.tmp")


def test_consumer_of_two_remade_temp_files_one_made_from_the_other_runs(project):
    # r needs p.tmp and q.tmp; q is made from p.tmp. Both are remade, and r
    # must still run (it was once left waiting forever, with exit 0).
    project.flowfile("""\
rule all:
    input: "r.out"

rule p:
    output: temp("p.tmp")
    shell: "echo P > {output}"

rule q:
    input: "p.tmp"
    output: temp("q.tmp")
    shell: "cat {input} > {output}"

rule r:
    input: "p.tmp", "q.tmp"
    output: "r.out"
    shell: "cat {input} > {output}; echo R{config[r]} >> {output}"
""")
    project.run("--config", "r=1")
    assert sorted(project.ran("--config", "r=2")) == ["p", "q", "r"]
    assert project.read("r.out") == "P\nP\nR2\n"
    assert not project.exists("p.tmp") and not project.exists("q.tmp")
    assert project.ran("--config", "r=2") == []


def test_temp_files_are_released_at_the_end_even_if_a_checkpoint_failed(project):
    project.flowfile("""\
rule all:
    input: "agg.txt", "x.txt"

checkpoint split:
    output: directory("parts")
    shell: "exit 1"

rule agg:
    input: expand("parts/{i}.txt", i=glob_wildcards("parts/{i}.txt").i)
    output: "agg.txt"
    shell: "cat {input} > {output}"

rule p:
    output: temp("t.tmp")
    shell: "echo t > {output}"

rule x:
    input: "t.tmp"
    output: "x.txt"
    shell: "cat {input} > {output}"
""")
    r = project.flow("run", "-k")
    assert r.returncode == 1, r.output
    assert project.read("x.txt") == "t\n"
    assert not project.exists("t.tmp")


# what a run: block reads is in its key ------------------------------------------------

READS_FLOWFILE = """\
configfile: "config.yaml"
FACTOR = 2
OFFSET = 10

rule all:
    input: "scaled.txt", "offset.txt", "plain.txt"

rule scaled:
    output: "scaled.txt"
    run:
        with open(output[0], "w") as f:
            f.write(str(config["factor"] * FACTOR))

rule offset:
    output: "offset.txt"
    run:
        with open(output[0], "w") as f:
            f.write(str(config["offset"] + OFFSET))

rule plain:
    output: "plain.txt"
    run:
        with open(output[0], "w") as f:
            f.write("plain")
"""


def _reads_project(project, block: str | None = None, config: str = "factor: 2\noffset: 1\n") -> None:
    """READS_FLOWFILE (or one rule ``r`` writing ``out.txt`` with ``block``), run once."""
    project.write("config.yaml", config)
    if block is None:
        project.flowfile(READS_FLOWFILE)
    else:
        project.flowfile('configfile: "config.yaml"\nFACTOR = 2\nOFFSET = 10\n\nrule r:\n'
                         '    output: "out.txt"\n    run:\n' + block)
    assert project.ran() != []


def test_changed_config_entry_reruns_only_the_run_blocks_that_read_it(project):
    _reads_project(project)
    project.write("config.yaml", "factor: 3\noffset: 1\n")
    assert project.ran() == ["scaled"]
    assert project.read("scaled.txt") == "6"
    assert project.ran() == []


def test_config_override_reruns_the_run_blocks_that_read_that_entry(project):
    _reads_project(project)
    assert project.ran("--config", "factor=3") == ["scaled"]
    assert project.read("scaled.txt") == "6"
    assert project.ran("--config", "factor=3") == []


def test_changed_flowfile_global_reruns_only_the_run_blocks_that_read_it(project):
    _reads_project(project)
    project.flowfile(READS_FLOWFILE.replace("FACTOR = 2", "FACTOR = 5"))
    assert project.ran() == ["scaled"]
    assert project.read("scaled.txt") == "10"


BLOCK_COMPREHENSION = """\
        with open(output[0], "w") as f:
            f.write(" ".join(str(v * FACTOR) for v in range(3)))
"""
BLOCK_NESTED_FUNCTION = """\
        def scale(v):
            return v * FACTOR
        with open(output[0], "w") as f:
            f.write(" ".join([str(scale(v)) for v in range(3)]))
"""


@pytest.mark.parametrize("block", [BLOCK_COMPREHENSION, BLOCK_NESTED_FUNCTION], ids=["comprehension", "function"])
def test_global_read_inside_a_nested_scope_of_a_run_block_reruns_it(project, block):
    _reads_project(project, block)
    project.write("Flowfile", project.read("Flowfile").replace("FACTOR = 2", "FACTOR = 3"))
    assert project.ran() == ["r"]
    assert project.read("out.txt") == "0 3 6"


def test_config_get_with_a_constant_key_reruns_when_that_entry_appears(project):
    _reads_project(project, '        open(output[0], "w").write(str(config.get("factor", 1)))\n', config="offset: 1\n")
    project.write("config.yaml", "offset: 1\nfactor: 4\n")
    assert project.ran() == ["r"]
    assert project.read("out.txt") == "4"


def test_run_block_using_the_whole_config_reruns_when_any_entry_changes(project):
    _reads_project(project, '        open(output[0], "w").write(repr(sorted(config.items())))\n')
    project.write("config.yaml", "factor: 2\noffset: 7\n")
    assert project.ran() == ["r"]
    assert project.read("out.txt") == "[('factor', 2), ('offset', 7)]"


def test_global_named_in_a_shell_command_of_a_run_block_reruns_it(project):
    _reads_project(project, '        shell("echo {FACTOR} {config[factor]} > {output}")\n')
    project.write("Flowfile", project.read("Flowfile").replace("FACTOR = 2", "FACTOR = 3"))
    assert project.ran() == ["r"]
    assert project.read("out.txt") == "3 2\n"


def test_dry_run_names_the_config_entry_a_run_block_reads(project):
    _reads_project(project)
    reason = _reasons(project, "--config", "factor=3")["scaled"]
    assert "config['factor']" in reason, reason
