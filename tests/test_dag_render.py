"""A readable ``flow dag`` (issue 16, point 7): the rule graph, the jobs of a
rule grouped past a threshold, nodes coloured by what a run would do now."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest
from debian import required
from flow.engine.graph.dag import DAG
from flow.engine.graph.render import Statuses, graph, to_dot, to_mermaid
from flow.engine.load.loader import load

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# 10 extract jobs feed 10 count jobs, which all feed one report.
FAN = """\
rule all:
    input: "report.txt"

rule extract:
    input: "raw/{s}.txt"
    output: "clean/{s}.txt"
    shell: "tr a-z A-Z < {input} > {output}"

rule count:
    input: "clean/{s}.txt"
    output: "counts/{s}.txt"
    shell: "wc -c < {input} > {output}"

rule report:
    input: expand("counts/{s}.txt", s=[f"s{i}" for i in range(10)])
    output: "report.txt"
    shell: "cat {input} > {output}"
"""
NAMES = [f"s{i}" for i in range(10)]


def _fan_jobs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Flowfile").write_text(FAN)
    (tmp_path / "raw").mkdir()
    for s in NAMES:
        (tmp_path / "raw" / f"{s}.txt").write_text(s)
    d = DAG(load("Flowfile"))
    return d.reachable(d.targets([]))


def _named(g):
    """The graph's nodes by their label's first line, and its edges by those names."""
    names = {n.key: n.lines[0] for n in g.nodes}
    return names, [(names[a], names[b]) for a, b in g.edges]


def _job_label(dot_label: str) -> str:
    """``extract\\ns: s0`` (a job's node) as the job is named elsewhere: ``extract (s=s0)``."""
    name, *values = dot_label.split("\\n")
    return f"{name} ({', '.join(v.replace(': ', '=', 1) for v in values)})" if values else name


def _dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    nodes = {k: label for k, label in re.findall(r'^\s*(\w+) \[label="([^"]*)"', text, re.M)}
    edges = [(nodes[a], nodes[b]) for a, b in re.findall(r"^\s*(\w+) -> (\w+);$", text, re.M)]
    return nodes, edges


# in memory ---------------------------------------------------------------------------


def test_rule_graph_has_one_node_a_rule_and_each_edge_once(tmp_path, monkeypatch):
    jobs = _fan_jobs(tmp_path, monkeypatch)
    names, edges = _named(graph(jobs, rules=True))
    assert sorted(names.values()) == ["all", "count", "extract", "report"]
    assert all(n.lines == [n.lines[0]] for n in graph(jobs, rules=True).nodes)  # the rule's name only
    assert sorted(edges) == [("count", "report"), ("extract", "count"), ("report", "all")]


def test_jobs_of_a_rule_past_the_threshold_are_one_node_with_a_count(tmp_path, monkeypatch):
    jobs = _fan_jobs(tmp_path, monkeypatch)
    g = graph(jobs, group_above=8)
    labels = sorted(n.lines[0] for n in g.nodes)
    assert labels == ["all", "count ×10", "extract ×10", "report"]
    grouped = next(n for n in g.nodes if n.lines[0] == "extract ×10")
    assert grouped.lines[1] == "s: 10 values"
    _, edges = _named(g)
    assert sorted(edges) == [("count ×10", "report"), ("extract ×10", "count ×10"), ("report", "all")]


def test_the_threshold_is_more_than_n_and_zero_never_groups(tmp_path, monkeypatch):
    jobs = _fan_jobs(tmp_path, monkeypatch)
    assert len(graph(jobs, group_above=10).nodes) == 22  # 10 jobs is not more than 10
    assert len(graph(jobs, group_above=9).nodes) == 4
    assert len(graph(jobs, group_above=0).nodes) == 22
    assert len(graph(jobs).edges) == 21  # the plain job graph: one edge per dependency


def test_a_grouped_node_lists_a_few_values(tmp_path, monkeypatch):
    jobs = _fan_jobs(tmp_path, monkeypatch)
    few = [j for j in jobs if j.rule.name == "extract"][:3]
    g = graph(few, group_above=2)
    assert g.nodes[0].lines == ["extract ×3", "s: s0, s1, s2"]


def test_status_colours_and_a_legend_of_what_is_shown(tmp_path, monkeypatch):
    jobs = _fan_jobs(tmp_path, monkeypatch)
    run = {j.id for j in jobs if j.wildcards.get("s") in ("s0", "s1") or j.rule.name == "report"}
    statuses = Statuses(would_run=run)
    g = graph(jobs, group_above=8, statuses=statuses)
    by_name = {n.lines[0]: n for n in g.nodes}
    assert by_name["extract ×10"].status == "some"
    assert by_name["extract ×10"].lines[-1] == "2 of 10 would run"
    assert by_name["report"].status == "run"
    assert by_name["all"].status == "run"  # it has no action: it gathers what would run
    assert g.statuses == ["run", "some"]

    dot = to_dot(jobs, group_above=8, statuses=statuses)
    assert 'fillcolor="#ffd8a8"' in dot and "subgraph cluster_legend" in dot
    assert 'legend_some [label="some jobs would run"' in dot and "legend_ok" not in dot
    mermaid = to_mermaid(jobs, group_above=8, statuses=statuses)
    assert 'subgraph legend["status"]' in mermaid
    assert re.search(r"^    classDef run fill:#ffd8a8", mermaid, re.M)
    assert re.search(r"^    class (\w+,)*legend_run run$", mermaid, re.M)


def test_up_to_date_and_waiting_jobs(tmp_path, monkeypatch):
    jobs = _fan_jobs(tmp_path, monkeypatch)
    extract = {j.id for j in jobs if j.rule.name == "extract"}
    g = graph(jobs, rules=True, statuses=Statuses(waiting=extract))
    by_name = {n.lines[0]: n.status for n in g.nodes}
    assert by_name == {"extract": "wait", "count": "ok", "report": "ok", "all": "ok"}
    assert "dashed" in to_dot(jobs, rules=True, statuses=Statuses(waiting=extract))


def test_without_status_nothing_is_coloured(tmp_path, monkeypatch):
    jobs = _fan_jobs(tmp_path, monkeypatch)
    dot = to_dot(jobs, rules=True)
    assert "fillcolor" not in dot and "legend" not in dot
    assert "classDef" not in to_mermaid(jobs, group_above=8)


# the command --------------------------------------------------------------------------


def _fan_project(project):
    project.flowfile(FAN)
    for s in NAMES:
        project.write(f"raw/{s}.txt", s)


def test_flow_dag_rules_is_the_rule_graph(project):
    _fan_project(project)
    r = project.flow("dag", "--rules")
    assert r.returncode == 0, r.output
    nodes, edges = _dot(r.stdout)
    assert sorted(nodes.values()) == ["all", "count", "extract", "report"]
    assert sorted(edges) == [("count", "report"), ("extract", "count"), ("report", "all")]
    r = project.flow("dag", "--rules", "--format", "mermaid", "counts/s3.txt")
    assert r.returncode == 0, r.output
    assert re.findall(r'^\s*\w+\["(\w+)"\]$', r.stdout, re.M) == ["extract", "count"]


def test_flow_dag_groups_by_default_and_not_with_zero(project):
    _fan_project(project)
    grouped = project.flow("dag")
    assert grouped.returncode == 0, grouped.output
    nodes, edges = _dot(grouped.stdout)
    assert sorted(nodes.values()) == ["all", "count ×10\\ns: 10 values", "extract ×10\\ns: 10 values", "report"]
    assert len(edges) == len(set(edges)) == 3
    every = project.flow("dag", "--group-above", "0")
    assert len(_dot(every.stdout)[0]) == 22


def test_flow_dag_status_agrees_with_a_dry_run_and_runs_nothing(project):
    _fan_project(project)
    project.run("counts/s0.txt", "counts/s1.txt")
    would = project.would_run()
    r = project.flow("dag", "--status", "--group-above", "0")
    assert r.returncode == 0, r.output
    nodes = re.findall(r'^\s*j\d+ \[label="([^"]*)".*fillcolor="(#\w+)"', r.stdout, re.M)
    colour = {_job_label(label): fill for label, fill in nodes}
    assert len(colour) == 22
    ran = {label for label, fill in colour.items() if fill == "#ffd8a8"}
    assert ran == set(would) | {"all"}  # `all` has no action; it would complete
    assert {label for label, fill in colour.items() if fill == "#d3f9d8"} == {
        "extract (s=s0)", "extract (s=s1)", "count (s=s0)", "count (s=s1)"}
    assert "legend_ok" in r.stdout and "legend_run" in r.stdout
    assert not project.exists("report.txt")
    rules = project.flow("dag", "--rules", "--status", "--format", "mermaid")
    assert rules.returncode == 0, rules.output
    assert "classDef some" in rules.stdout and "classDef run" in rules.stdout


def test_a_bad_threshold_is_a_usage_error(project):
    _fan_project(project)
    r = project.flow("dag", "--group-above", "-1")
    assert r.returncode == 2
    assert "--group-above" in r.stderr and "Traceback" not in r.output


def test_status_of_a_cycle_is_an_error_for_people(project):
    project.flowfile(textwrap.dedent("""\
        rule ping:
            input: "pong.txt"
            output: "ping.txt"
            shell: "cp {input} {output}"

        rule pong:
            input: "ping.txt"
            output: "pong.txt"
            shell: "cp {input} {output}"
        """))
    r = project.flow("dag", "--status")
    assert r.returncode == 2, r.output
    assert "ping" in r.stderr and "Traceback" not in r.output


def _svg_size(svg: str) -> tuple[float, float]:
    w, h = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    return float(w) * 96 / 72, float(h) * 96 / 72  # px at 96 dpi


@pytest.fixture(scope="session")
def dot() -> str:
    """Graphviz's dot: on PATH, or installed from Debian's packages (root with
    apt-get); where neither, these tests fail, saying what to install."""
    return required("graphviz", ["dot"], "flow dag --format svg")


@pytest.mark.parametrize("args", [(), ("--status",), ("--rules",), ("--rules", "--status")])
def test_the_energy_example_fits_a_screen(project, args, dot):
    shutil.copytree(EXAMPLES / "energy", project.root, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".flow", "clean", "consolidated", "results"))
    r = project.flow("dag", *args, "--format", "svg")
    assert r.returncode == 0, r.output
    width, height = _svg_size(r.stdout)
    assert width <= 1280 and height <= 800, (width, height)  # it was 13,493 x 488 px
