"""flow report (issue 16, point 6): one HTML file that opens offline, with
the run's graph (jobs coloured by what became of them), its timeline by
worker slot, the failed jobs, per-rule statistics and the run history;
read as HTML, then opened in a headless Chromium (installed from Debian's
packages when it can be): the graph and timeline drawn, no console error,
no request outside the file, a screenshot that is not blank."""

from __future__ import annotations

import html.parser
import re
from itertools import pairwise
from pathlib import Path

import pytest
from browser import NAMES, Browser, ink
from conftest import Project
from debian import required
from flow.engine.graph.layout import layout
from flow.engine.run.records import AttemptRow
from flow.engine.run.timeline import MAX_BARS, slots, timeline, timeline_svg

ODD = "a <b>&'x\".txt"  # a file name that is markup in HTML

# a ran, bad fails, c is not reached, ok2 is up to date (made by the first run)
FAILING = """
rule all:
    input: "c.txt", "ok2.txt"

rule a:
    output: "a <b>&'x\\".txt"
    shell: "echo a > {output:q}"

rule bad:
    input: rules.a.output
    output: "b.txt"
    shell: "sleep 0.2; echo broken >&2; exit 3"

rule c:
    input: "b.txt"
    output: "c.txt"
    shell: "cp {input} {output}"

rule ok2:
    output: "ok2.txt"
    shell: "echo ok > {output}"
"""

# 120 part jobs, 6 merges: drawn with the parts grouped
MANY = """
rule all:
    input: expand("merged/{g}.txt", g=range(6))

rule part:
    output: "parts/{i}.txt"
    shell: "echo {wildcards.i} > {output}"

rule merge:
    input: lambda wildcards: [f"parts/{i}.txt" for i in range(int(wildcards.g), 120, 6)]
    output: "merged/{g}.txt"
    shell: "cat {input} > {output}"
"""


class Tables(html.parser.HTMLParser):
    """The text of every table cell, by the id of the section it is in, and
    each graph node's class and tooltip."""

    def __init__(self, text: str):
        super().__init__()
        self.section, self.tables, self.nodes = "", {}, []
        self._cell: list[str] | None = None
        self._node: str | None = None
        self._title: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id", "")
        elif tag == "tr":
            self.tables.setdefault(self.section, []).append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "g" and "node" in a.get("class", ""):
            self._node = a["class"].split("status-")[1]
        elif tag == "title" and self._node is not None:
            self._title = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self.section][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "title" and self._title is not None:
            self.nodes.append((self._node, "".join(self._title)))
            self._node, self._title = None, None

    def handle_data(self, data):
        for part in (self._cell, self._title):
            if part is not None:
                part.append(data)


def _rows(tables: Tables, section: str) -> dict[str, list[str]]:
    """The rows of a section's table by their first cell (the heading row too)."""
    return {row[0]: row for row in tables.tables[section] if row}


def _outside_references(text: str) -> list[str]:
    """Every src, href or url() in the page that leads outside it (not #, not data:)."""
    refs = re.findall(r"""(?:\b(?:src|href|action)\s*=\s*["']?|url\(\s*["']?)([^"' )>]*)""", text)
    return [r for r in refs if not r.startswith(("#", "data:"))]


@pytest.fixture
def failed_run(tmp_path) -> Project:
    p = Project(tmp_path)
    p.flowfile(FAILING)
    p.run("ok2.txt")
    assert p.flow("run").returncode == 1
    return p


def _report(p: Project, *args: str) -> str:
    r = p.flow("report", *args)
    assert r.returncode == 0, r.output
    return (p.root / (args[args.index("-o") + 1] if "-o" in args else "report.html")).read_text()


# the page's content ---------------------------------------------------------------------


def test_each_job_is_coloured_by_what_became_of_it(failed_run):
    page = Tables(_report(failed_run))
    status = {title.split("\n")[0]: s for s, title in page.nodes}
    assert status == {"a": "ran", "bad": "failed", "c": "notreached", "ok2": "uptodate", "all": "notreached"}
    assert "4 jobs (1 ran · 1 up to date · 1 failed · 1 not reached), drawn one node a job" in _report(failed_run)


def test_the_page_refers_to_nothing_outside_itself(failed_run):
    text = _report(failed_run)
    assert _outside_references(text) == []
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg\")", text)  # (the SVG namespace is a name, not a link)
    assert "default-src 'none'" in text  # and its policy forbids the browser to fetch anything


def test_the_per_rule_table_holds_the_history_statistics(failed_run):
    rows = _rows(Tables(_report(failed_run)), "stats")
    assert rows["rule"][:4] == ["rule", "this run", "attempts", "failed"]
    assert rows["bad"][1:4] == ["1 failed", "1", "1"]
    assert rows["bad"][4] == "–"  # no duration percentiles: it never succeeded
    assert rows["ok2"][1:4] == ["1 up to date", "1", "0"]
    assert rows["a"][1:4] == ["1 ran", "1", "0"] and rows["a"][4].endswith(" s")
    assert rows["c"][1:3] == ["1 not reached", "no attempt recorded"]


def test_the_failed_jobs_and_the_run_history_are_listed(failed_run):
    page = Tables(_report(failed_run))
    (head, bad) = page.tables["failures"]
    assert bad[0] == "bad" and bad[2] == "3" and bad[4] == "output b.txt is missing"
    history = _rows(page, "history")
    assert history["2"][3] == "failed" and history["2"][-1] == "flow run"
    assert history["1"][3] == "ok" and history["1"][-1] == "flow run ok2.txt"


def test_the_timeline_has_a_bar_per_attempt_with_its_tooltip(failed_run):
    text = _report(failed_run)
    bars = re.findall(r'<rect class="bar"[^>]*fill="([^"]+)"[^>]*><title>([^<]*)</title>', text)
    assert len(bars) == 2
    (ok_fill, ok_tip), (bad_fill, bad_tip) = bars
    assert ok_tip.startswith("a") and "why: output a &lt;b&gt;" in ok_tip and ok_fill != bad_fill
    assert bad_tip.startswith("bad\nfailed (status 3)\n0.2") and "CPU" in bad_tip
    assert "2 job attempts on 1 worker slot" in text


def test_file_names_are_escaped(failed_run):
    text = _report(failed_run)
    assert ODD not in text and "<b>" not in text
    assert "a &lt;b&gt;&amp;&#x27;x&quot;.txt" in text


def test_an_older_run_can_be_reported(failed_run):
    page = Tables(_report(failed_run, "--run", "1", "-o", "first.html"))
    assert {title.split("\n")[0]: s for s, title in page.nodes}["ok2"] == "ran"
    assert [row[0] for row in page.tables["history"] if "this" in row] == []
    assert "flow run 1" in (failed_run.root / "first.html").read_text()


def test_many_jobs_are_drawn_grouped_by_rule(tmp_path):
    p = Project(tmp_path)
    p.flowfile(MANY)
    p.run("-j", "4")
    text = _report(p)
    nodes = Tables(text).nodes
    assert len(nodes) == 8  # part ×120, six merges, all
    assert any(s == "ran" and title.startswith("part ×120") and "120 ran" in title for s, title in nodes)
    assert "drawn the jobs of a rule with more than 8 of them as one node" in text


def test_a_flowfile_that_no_longer_loads_costs_only_the_graph(failed_run):
    failed_run.flowfile("rule broken\n")
    text = _report(failed_run)
    assert "The Flowfile could not be loaded, so the graph is not drawn" in text
    assert text.count('<rect class="bar"') == 2 and 'id="history"' in text


def test_no_run_yet_says_to_run_first(project):
    project.flowfile(FAILING)
    r = project.flow("report")
    assert r.returncode == 2
    assert "no run is recorded" in r.stderr and "`flow run` first" in r.stderr
    assert not project.exists("report.html")


def test_a_report_that_cannot_be_written_is_exit_2(failed_run):
    r = failed_run.flow("report", "-o", "no/such/dir/report.html")
    assert r.returncode == 2 and "-o" in r.stderr and "No such file or directory" in r.stderr


def test_an_unknown_run_is_exit_2(failed_run):
    r = failed_run.flow("report", "--run", "9")
    assert r.returncode == 2 and "run 9: no such run" in r.stderr


def test_directory_option_reports_that_project(failed_run, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    r = Project(elsewhere).flow("report", "-C", str(failed_run.root), "-o", "r.html")
    assert r.returncode == 0, r.output
    assert "flow run 2" in (failed_run.root / "r.html").read_text()


# the timeline and the layout, on their own --------------------------------------------


def _attempt(start: float, end: float, status: int = 0, rule: str = "r", i: int = 0) -> AttemptRow:
    return AttemptRow(f"{rule}[i={i}]", rule, {"i": str(i)}, start, end, status, 1, None, None, None, None, None)


def test_slots_go_to_the_lowest_free_one():
    attempts = [_attempt(0, 4), _attempt(0, 1), _attempt(1, 3), _attempt(2, 5), _attempt(4, 6)]
    assert slots(attempts) == [0, 1, 1, 2, 0]


def test_ten_thousand_attempts_are_drawn_as_at_most_max_bars():
    attempts = [_attempt(i * 0.01 + s, i * 0.01 + s + 0.009, status=int(i == 500 and s == 0), i=i)
                for i in range(1250) for s in range(8)]
    t = timeline(attempts, 0.0, 13.0)
    assert t.slots <= 8 and len(t.bars) <= MAX_BARS
    assert t.note is not None and "10,000 attempts are drawn as" in t.note
    assert sum(b.failed for b in t.bars) == 1
    assert sum(int(b.tip.split(" ", 1)[0]) for b in t.bars) == 10_000
    svg = timeline_svg(t)
    assert svg.count('class="bar"') == len(t.bars)


def test_the_layout_puts_edges_left_to_right_and_nodes_apart():
    sizes = [(80, 30), (60, 30), (100, 45), (80, 30), (70, 30), (90, 30)]
    edges = [(0, 2), (1, 2), (2, 3), (0, 3), (3, 4), (1, 5), (4, 2)]  # 4 -> 2 closes a cycle
    placed = layout(sizes, edges)
    drawn_back = [(a, b) for a, b, _, back in placed.edges if back]
    assert drawn_back == [(4, 2)]
    for a, b, points, back in placed.edges:
        if not back:
            assert placed.x[a] + sizes[a][0] < placed.x[b]
            assert all(p[0] <= q[0] for p, q in pairwise(points))
    boxes = [(placed.x[i], placed.y[i], placed.x[i] + w, placed.y[i] + h) for i, (w, h) in enumerate(sizes)]
    for i, p in enumerate(boxes):
        for q in boxes[i + 1:]:
            assert p[2] <= q[0] or q[2] <= p[0] or p[3] <= q[1] or q[3] <= p[1], (p, q)
        assert p[2] <= placed.width and p[3] <= placed.height


def test_a_long_edge_runs_between_the_nodes_of_the_layers_it_crosses():
    sizes = [(50, 30)] * 6
    edges = [(0, 1), (1, 2), (2, 3), (0, 3), (4, 1), (5, 2)]
    placed = layout(sizes, edges)
    (points,) = [pts for a, b, pts, _ in placed.edges if (a, b) == (0, 3)]
    assert len(points) == 6  # out, through the two layers between (two points each), in
    for x, y in points[1:-1]:
        for v in (1, 2, 4, 5):
            inside_x = placed.x[v] <= x <= placed.x[v] + 50
            assert not (inside_x and placed.y[v] <= y <= placed.y[v] + 30)


# in a browser ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless-capable Chromium: on PATH, or installed from Debian's
    packages (root with apt-get); where neither, the browser tests fail,
    saying what to install."""
    return required("chromium", NAMES, "opening the report in a browser")


def _opened(chromium: str, report: Path):
    browser = Browser(chromium, 1400, 1000, timeout=30)
    try:
        return browser, browser.open(report.as_uri())
    except BaseException:
        browser.close()
        raise


def _check_rendered(page, url: str) -> None:
    assert page.errors() == []
    assert [r for r in page.requests() if r != url and not r.startswith("data:")] == []
    drawn = page.evaluate("""[
        document.querySelectorAll('#graph svg *').length,
        document.querySelectorAll('#graph svg .node').length,
        document.querySelectorAll('#timeline svg rect.bar').length,
        Math.round(document.querySelector('#graph svg').getBBox().width),
        Math.round(document.querySelector('#timeline svg').getBBox().height)]""")
    graph_elements, nodes, bars, graph_width, timeline_height = drawn
    assert graph_elements > 10 and nodes > 0 and bars > 0, drawn
    assert graph_width > 50 and timeline_height > 20, drawn  # laid out, not collapsed
    colours, share = ink(page.screenshot(scale=0.5))
    assert colours > 20 and share > 0.03, (colours, share)


def test_the_report_renders_in_a_browser(chromium, failed_run):
    _report(failed_run)
    report = failed_run.root / "report.html"
    browser, page = _opened(chromium, report)
    with browser:
        _check_rendered(page, report.as_uri())
        assert page.evaluate("document.querySelectorAll('#graph svg .node').length") == 5
        assert page.evaluate("document.querySelectorAll('#timeline svg rect.bar').length") == 2


def test_a_report_of_many_jobs_renders_and_its_tables_sort(chromium, tmp_path):
    p = Project(tmp_path)
    p.flowfile(MANY)
    p.run("-j", "4")
    p.write("parts_changed.txt", "")
    p.run("-F")
    _report(p)
    report = p.root / "report.html"
    browser, page = _opened(chromium, report)
    with browser:
        _check_rendered(page, report.as_uri())
        runs = "Array.from(document.querySelectorAll('#history tbody tr')).map(r => r.cells[0].textContent)"
        assert page.evaluate(runs) == ["2", "1"]
        page.evaluate("document.querySelector('#history th').click()")
        assert page.evaluate(runs) == ["1", "2"]
        page.evaluate("document.querySelector('#history th').click()")
        assert page.evaluate(runs) == ["2", "1"]
        assert page.errors() == []
