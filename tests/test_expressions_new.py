"""Snakefiles as people write them (issue 15): tab indentation, a directive
on the `rule NAME:` line, and the pure expressions of FLOWFILE.md's
"Expressions" section (comparisons, conditional expressions, f-strings,
comprehensions, lambdas and `def` input functions, `unpack()`, `os.path`),
each loaded from a real Flowfile and, where it matters, run by `flow run`."""

from __future__ import annotations

from pathlib import Path

import pytest
from flow.engine.load.loader import load
from flow.grammar import FlowfileError


def _load(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "Flowfile").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return load("Flowfile")


def _load_error(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> FlowfileError:
    with pytest.raises(FlowfileError) as info:
        _load(tmp_path, text, monkeypatch)
    return info.value


# ======================================================================= tabs

TAB_FLOWFILE = (
    'rule all:\n'
    '\tinput: "a.txt", "b.txt"\n'
    '\n'
    'rule a:\n'
    '\toutput: "a.txt"\n'
    '\tshell: "echo a > {output}"\n'
    '\n'
    'rule b:\n'
    '\tinput:\n'
    '\t\t"a.txt"\n'
    '\toutput: "b.txt"\n'
    '\trun:\n'
    '\t\twith open(input[0]) as src, open(output[0], "w") as dst:\n'
    '\t\t\tfor line in src:\n'
    '\t\t\t\tif line.strip():\n'
    '\t\t\t\t\tdst.write("b after " + line)\n'
    '\t\tprint("b done")\n'
)


def test_tab_indented_flowfile_runs(project):
    (project.root / "Flowfile").write_text(TAB_FLOWFILE)
    r = project.run()
    assert project.read("a.txt") == "a\n"
    assert project.read("b.txt") == "b after a\n"
    assert "b done" in r.output


def test_tab_indented_run_block_fails_at_its_line(project):
    (project.root / "Flowfile").write_text(
        'rule a:\n\toutput: "a.txt"\n\trun:\n\t\tx = 1\n\n\t\tif x:\n\t\t\traise ValueError("boom")\n')
    r = project.flow("run")
    assert r.returncode != 0
    assert 'Flowfile", line 7' in r.output and "ValueError: boom" in r.output


def test_inconsistent_tabs_are_refused_by_flow_run(project):
    (project.root / "Flowfile").write_text('rule a:\n    output: "a.txt"\n\tshell: "touch {output}"\n')
    r = project.flow("run")
    assert r.returncode == 2
    assert "Flowfile:3:2: error: inconsistent use of tabs and spaces in indentation" in r.stderr
    assert not project.exists("a.txt")


def test_tab_indented_flowfile_loads(tmp_path, monkeypatch):
    wf = _load(tmp_path, TAB_FLOWFILE, monkeypatch)
    assert list(wf.rules) == ["all", "a", "b"]
    assert [s.text for s in wf.rules["all"].inputs.specs] == ["a.txt", "b.txt"]


# ============================================================ rule-line directive


def test_directive_on_the_rule_line_loads_and_runs(project):
    project.flowfile('''\
        rule all: input: "a.txt", "b.txt"

        rule make:
            output: "{x}.txt"
            shell: "echo {wildcards.x} > {output}"
        ''')
    project.run()
    assert project.read("a.txt") == "a\n" and project.read("b.txt") == "b\n"
