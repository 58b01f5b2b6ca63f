"""The development loop without watch: flow status, flow run -n --explain,
and flow dag drawn as a picture."""

from __future__ import annotations

import json
import os
import stat

PIPELINE = '''
rule all:
    input: "out/ab.txt", "out/c.txt", "out/d.txt"

rule ab:
    input: "a.txt", "b.txt"
    output: "out/ab.txt"
    shell: "cat {input} > {output}"

rule c:
    input: "c.txt"
    output: "out/c.txt"
    params: n=1
    shell: "cp {input} {output}"

rule d:
    input: "d.txt"
    output: "out/d.txt"
    shell: "cp {input} {output}"
'''


def _built(project):
    for name in "abcd":
        project.write(f"{name}.txt", f"{name}\n")
    project.flowfile(PIPELINE)
    project.run()


def test_status_groups_what_is_out_of_date_by_reason(project):
    _built(project)
    project.write("a.txt", "A\n")
    project.write("b.txt", "B\n")
    project.flowfile(PIPELINE.replace("params: n=1", "params: n=2"))
    (project.root / "out/d.txt").unlink()
    r = project.flow("status")
    assert r.returncode == 1, r.stderr  # something is out of date (as `make -q`)
    assert "input changed (1):\n  ab: a.txt changed; b.txt changed\n" in r.stdout
    assert "params changed (1):\n  c: params changed\n" in r.stdout
    assert "output missing (1):\n  d: output out/d.txt is missing\n" in r.stdout
    assert "3 jobs out of date" in r.stderr
    assert not (project.root / "out/d.txt").exists()  # nothing ran


def test_status_names_outputs_changed_or_made_outside_flow(project):
    _built(project)
    os.chmod(project.root / "out/c.txt", stat.S_IWUSR | stat.S_IRUSR)
    project.write("out/c.txt", "edited by hand\n")
    r = project.flow("status")
    assert "output modified outside flow (1):\n  c: output out/c.txt was modified outside flow" in r.stdout


def test_status_says_when_everything_is_up_to_date(project):
    _built(project)
    r = project.flow("status")
    assert r.stdout == ""
    assert "everything is up to date (3 jobs)" in r.stderr


def test_status_json_is_for_tools(project):
    _built(project)
    project.write("c.txt", "C\n")
    r = project.flow("status", "--json")
    data = json.loads(r.stdout)
    assert data["out_of_date"] == [{"job": "c", "rule": "c", "wildcards": {}, "reason": "input",
                                    "detail": "input c.txt changed", "changes": ["c.txt changed"],
                                    "paths": ["c.txt"]}]
    assert data["up_to_date"] == 2


def test_explain_lists_every_changed_input_and_the_jobs_that_would_run_first(project):
    _built(project)
    project.write("a.txt", "A\n")
    project.write("b.txt", "B\n")
    project.flowfile(PIPELINE + '''
rule both:
    input: "out/ab.txt", "out/c.txt"
    output: "out/both.txt"
    shell: "cat {input} > {output}"
''')
    project.run("out/both.txt")
    project.write("a.txt", "AA\n")
    project.write("c.txt", "CC\n")
    r = project.flow("run", "--explain", "out/both.txt")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "           - a.txt changed" in lines and "           - b.txt changed" not in lines
    i = lines.index("would run  both: ab would run first")
    assert lines[i + 1:i + 3] == ["           - ab would run first", "           - c would run first"]
    assert not project.read("out/ab.txt").startswith("AA")  # --explain runs nothing


def test_dag_as_a_picture_is_drawn_by_graphviz_dot(project, tmp_path):
    # A stand-in for Graphviz's dot: it records how flow called it and what it was given.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dot").write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\n'
                                 'printf "<svg>"; cat; printf "</svg>"\n')
    (bin_dir / "dot").chmod(0o755)
    _built(project)
    r = project.flow("dag", "--format", "svg", "-o", "graph.svg", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr
    svg = project.read("graph.svg")
    assert svg.startswith("<svg>digraph") and svg.endswith("</svg>") and '"ab"' in svg
    assert (bin_dir / "args").read_text().strip() == "-Tsvg"


def test_dag_as_a_picture_without_graphviz_says_how_to_get_it(project):
    _built(project)
    r = project.flow("dag", "--format", "png", env={"PATH": "/nonexistent"})
    assert r.returncode == 2
    assert "needs Graphviz's `dot`, which is not installed" in r.stderr
    assert "apt-get install graphviz" in r.stderr and "--format mermaid" in r.stderr
