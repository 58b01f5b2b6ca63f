"""Job kinds behind one interface: the registry in ``flow.rules`` builds each
action from its directive, says where each kind runs, and is what the worker
runs jobs through."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from flow.engine.load.loader import load
from flow.engine.run.executor import Task
from flow.rules import (
    ACTION_KINDS,
    ActionError,
    JobContext,
    NamedList,
    Namespace,
    action_class,
)
from flow.rules.worker import run_job


def _ctx(inputs=(), outputs=(), params=None) -> JobContext:
    return JobContext(rule="r", input=NamedList(inputs), output=NamedList(outputs),
                      params=Namespace(params), wildcards=Namespace(), threads=1,
                      resources=Namespace(), log=NamedList(), config={})


# a rule of each kind, and what its action must hold once loaded
RULES = {
    "shell": ('output: "a.txt"\n    shell: "echo hi > {output}"',
              lambda a: a.template == "echo hi > {output}"),
    "run": ('output: "a.txt"\n    run:\n        open(output[0], "w").close()',
            lambda a: a.code.strip() == 'open(output[0], "w").close()' and a.line == 4),
    "script": ('output: "a.txt"\n    script: "make.py"',
               lambda a: a.path == "make.py" and os.path.samefile(a.base, ".")),  # beside the Flowfile
    "duckdb": ('output: "a.csv"\n    duckdb: "SELECT 1 AS x"',
               lambda a: a.sql == "SELECT 1 AS x"),
    "mlx": ('output: "a.safetensors"\n    mlx: "tensors"',
            lambda a: a.name == "tensors"),
}


def test_the_registry_and_the_grammar_name_the_same_action_directives():
    from flow.grammar.parser import ACTIONS

    assert sorted(ACTIONS) == sorted(ACTION_KINDS)


def test_every_action_kind_has_a_case_here():
    assert set(RULES) == set(ACTION_KINDS)


@pytest.mark.parametrize("kind", sorted(RULES))
def test_each_kind_is_built_by_its_class_from_its_directive(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body, holds = RULES[kind]
    (tmp_path / "Flowfile").write_text(f"rule r:\n    {body}\n")
    action = load("Flowfile").rules["r"].action
    assert type(action) is action_class(kind) and action.kind == kind
    assert holds(action)


def test_a_bad_directive_value_is_refused_at_its_line_by_the_kinds_class(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Flowfile").write_text('rule r:\n    output: "a.bin"\n    mlx: "fft"\n')
    with pytest.raises(Exception, match=r"Flowfile:3.*unknown mlx: transform 'fft'"):
        load("Flowfile")


def _prepared(kind: str, tmp_path):
    """A job of ``kind`` prepared by its action, built as the model builds it."""
    (tmp_path / "make.py").write_text("pass\n")
    cases = {
        "shell": ("echo {output}", _ctx(outputs=["a.txt"])),
        "run": ("pass", _ctx(outputs=["a.txt"])),
        "script": ("make.py", _ctx(outputs=["a.txt"])),
        "duckdb": ("SELECT 1 AS x", _ctx(outputs=["a.csv"])),
        "mlx": ("tensors", _ctx(["a.parquet"], ["a.safetensors"], {"columns": ["x"]})),
    }
    text, ctx = cases[kind]
    return action_class(kind).from_directive(text, str(tmp_path / "Flowfile"), 1).prepare(ctx)


@pytest.mark.parametrize("kind", ACTION_KINDS)
def test_a_prepared_job_says_whether_a_worker_runs_it(kind, tmp_path):
    prepared = _prepared(kind, tmp_path)
    assert prepared.kind == kind
    assert prepared.in_worker is (kind != "shell")


@pytest.mark.parametrize("kind", [*ACTION_KINDS, "contracts"])
def test_a_task_given_no_in_worker_takes_its_kinds(kind):
    assert Task("j", kind, None).in_worker is (kind != "shell")


def test_the_worker_runs_a_run_block_through_the_registry(tmp_path):
    out = tmp_path / "made.txt"
    code = 'with open(output[0], "w") as f:\n    f.write("made by " + rule)\n'
    error = run_job("run", (code, "Flowfile", 1), _ctx(outputs=[str(out)]))
    assert error is None
    assert out.read_text() == "made by r"


def test_the_worker_runs_a_schema_check_through_the_registry(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("a\nx\n")
    error = run_job("contracts", ([str(table)], {"a": "int64"}, "r"), None)
    assert error is not None and f"output {table} does not match the schema: of rule r" in error


def test_the_worker_refuses_an_unknown_kind_with_a_message():
    error = run_job("fortran", None, None)
    assert error == ("unknown kind of job 'fortran' "
                     "(known: shell, run, script, duckdb, mlx, contracts)")


def test_a_check_is_not_an_action_directive():
    with pytest.raises(ActionError, match="unknown action kind 'contracts'"):
        action_class("contracts")


def test_importing_flow_rules_imports_no_heavy_library():
    code = textwrap.dedent("""
        import sys
        import flow.rules
        print(sorted({m.split(".")[0] for m in sys.modules} & {"duckdb", "pyarrow", "mlx", "numpy"}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"



def test_what_a_run_block_changes_in_the_globals_or_config_the_next_job_does_not_see(tmp_path):
    from conftest import Project

    p = Project(tmp_path)
    p.flowfile("""
        SEEN = []
        rule all:
            input: expand("out/{i}.txt", i=range(6))
        rule make:
            output: "out/{i}.txt"
            run:
                SEEN.append(wildcards.i)
                config["n"] += 1
                open(output[0], "w").write(f"{len(SEEN)} {config['n']}")
    """)
    p.run("-j", "1", "--config", "n=0")
    assert {p.read(f"out/{i}.txt") for i in range(6)} == {"1 1"}


def test_a_run_block_reads_a_large_global_in_every_job(tmp_path):
    from conftest import Project

    p = Project(tmp_path)
    p.flowfile("""
        NAMES = [f"sample{i}" for i in range(50000)]
        rule all:
            input: expand("out/{i}.txt", i=range(4))
        rule make:
            output: "out/{i}.txt"
            run:
                open(output[0], "w").write(NAMES[int(wildcards.i) * 1000])
    """)
    p.run("-j", "2")
    assert [p.read(f"out/{i}.txt") for i in range(4)] == ["sample0", "sample1000", "sample2000", "sample3000"]
