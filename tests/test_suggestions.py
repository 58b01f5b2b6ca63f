"""Small things a newcomer trips on (issue 16, point 10): "Did you mean" for
a misspelt rule name, target file or directive, counts in good English, and
the reason a rule runs again naming what changed."""

from __future__ import annotations

import pytest
from conftest import wait_for
from flow.grammar.errors import did_you_mean
from flow.rules import action_class

FLOWFILE = '''
rule all:
    input: "results/a.txt", "summary.txt"

rule make:
    input: "data/raw.csv"
    output: "results/{sample}.txt"
    shell: "cp {input} {output}"

rule summary:
    input: "results/a.txt"
    output: "summary.txt"
    shell: "cp {input} {output}"
'''


@pytest.fixture
def pipeline(project):
    project.flowfile(FLOWFILE)
    project.write("data/raw.csv", "x\n")
    return project


def test_a_misspelt_target_rule_is_suggested(pipeline):
    r = pipeline.flow("run", "alll")
    assert r.returncode == 2, r.output
    assert "no rule makes alll, and it does not exist. Did you mean `all`?" in r.stderr


@pytest.mark.parametrize("target, meant", [
    ("resutls/a.txt", "results/a.txt"),  # a misspelt directory of an output pattern
    ("results/a.tx", "results/a.txt"),  # a misspelt extension of an output pattern
    ("sumary.txt", "summary.txt"),  # a misspelt literal output (not the rule `summary`)
    ("dta/raw.csv", "data/raw.csv"),  # a misspelt existing source file
])
def test_a_misspelt_target_file_is_suggested(pipeline, target, meant):
    r = pipeline.flow("run", "-n", target)
    assert r.returncode == 2, r.output
    assert f"no rule makes {target}, and it does not exist. Did you mean `{meant}`?" in r.stderr
    # ... and a target close to nothing gets no guess
    r = pipeline.flow("run", "-n", "zzz/elsewhere.bin")
    assert r.returncode == 2 and "no rule makes zzz/elsewhere.bin" in r.stderr
    assert "Did you mean" not in r.stderr


def test_a_misspelt_rule_in_ruleorder_is_suggested(pipeline):
    pipeline.flowfile("ruleorder: mak > summary\n" + FLOWFILE)
    r = pipeline.flow("run", "-n")
    assert r.returncode == 2, r.output
    assert "ruleorder names `mak`, but there is no rule of that name. Did you mean `make`?" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["-R", "mke"], "-R mke: there is no rule of that name. Did you mean `make`?"),
    (["--forcerun", "sumary"], "-R sumary: there is no rule of that name. Did you mean `summary`?"),
    (["--until", "mkae"], "--until mkae: there is no rule of that name, and no rule makes a file of that name. "
                          "Did you mean `make`?"),
    (["--omit-from", "summry"], "--omit-from summry: there is no rule of that name, and no rule makes a file "
                                "of that name. Did you mean `summary`?"),
    (["--set-threads", "mak=2"], "--set-threads mak: there is no rule of that name. Did you mean `make`?"),
    (["--set-resources", "mak:mem_mb=3"], "--set-resources mak: there is no rule of that name. Did you mean `make`?"),
])
def test_a_misspelt_rule_on_the_command_line_is_suggested(pipeline, args, message):
    r = pipeline.flow("run", "-n", *args)
    assert r.returncode == 2, r.output
    assert message in r.stderr, r.stderr
    assert "The rules are: all, make, summary." in r.stderr


def test_a_misspelt_directive_is_suggested(project):
    project.flowfile('''
        rule make:
            input: "data/raw.csv"
            ouput: "results/a.txt"
            shell: "cp {input} {output}"
    ''')
    r = project.flow("run", "-n")
    assert r.returncode == 2, r.output
    assert "unknown directive `ouput:` in rule make. Did you mean `output`?" in r.stderr
    assert "Flowfile:4:5" in r.stderr


def test_did_you_mean_answers_only_close_words():
    assert did_you_mean("alll", ["all", "make"]) == "Did you mean `all`?"
    assert did_you_mean("zzzz", ["all", "make"]) == ""
    assert did_you_mean("all", ["all"]) == ""  # the word itself is no suggestion


def test_a_changed_duckdb_query_is_named_the_sql(project):
    project.write("data.csv", "a,b\n1,2\n")
    project.write("summary.parquet", "")
    project.flowfile('''
        rule summary:
            input: "data.csv"
            output: "summary.parquet"
            duckdb: "SELECT * FROM input"
    ''')
    project.run("--touch")  # recorded as made, without running DuckDB
    project.flowfile('''
        rule summary:
            input: "data.csv"
            output: "summary.parquet"
            duckdb: "SELECT a FROM input"
    ''')
    r = project.run("-n")
    assert "would run  summary: the SQL changed" in r.stdout, r.output
    assert "the duckdb changed" not in r.output


def test_the_actions_name_what_changed_in_words():
    # (as "the ... changed" says it: an mlx: rule's is its transform)
    assert action_class("duckdb").what == "SQL"
    assert action_class("mlx").what == "transform"


def test_flow_watch_counts_one_file_and_one_directory_in_the_singular(project):
    # The Flowfile is the one file; the directory glob_wildcards() looks in, the one directory.
    project.write("src/readme", "no .txt file yet\n")
    project.flowfile('''
        NAMES = glob_wildcards("src/{n}.txt").n

        rule all:
            input: expand("out/{n}.txt", n=NAMES)

        rule copy:
            input: "src/{n}.txt"
            output: "out/{n}.txt"
            shell: "cp {input} {output}"
    ''')
    proc = project.start("watch")
    try:
        wait_for(lambda: "waiting for changes" in project.read("flow.err"), timeout=30,
                 what="flow watch to wait for changes")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    line = next(ln for ln in project.read("flow.err").splitlines() if "waiting for changes" in ln)
    assert "(1 file, 1 directory;" in line, line
