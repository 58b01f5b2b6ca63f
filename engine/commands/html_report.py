"""flow report: one run as a single HTML file that opens offline (no
script, style, font or image from anywhere else; its own policy forbids
them): the run's job graph coloured by what became of each job, its
timeline by worker slot, the failed jobs, per-rule statistics over the
history, and the history of runs.

What became of a job in the run: ``ran`` (its last attempt succeeded),
``failed`` (its last attempt failed), ``not reached`` (not run, and needed
a job that failed or was not reached, or has no recorded outputs: the run
stopped first), ``up to date`` (not run, its outputs recorded by flow). The
graph is the one the Flowfile gives now for the run's targets; a Flowfile
that no longer loads costs the graph only, and the page says why.
"""

from __future__ import annotations

import os
import shlex
import time
from collections import Counter
from collections.abc import Callable

from flow import FlowError, __version__

from ..errors import UserError
from ..graph.drawing import RUN_STATUS, count_text, esc, graph_svg
from ..graph.render import GROUP_ABOVE, Graph, graph
from ..run.records import AttemptRow, Records, RuleStats, RunRow
from ..run.timeline import seconds_text, size_text, timeline, timeline_svg, when_text

MAX_NODES = 60  # the finest graph shape with at most this many nodes is drawn
HISTORY_ROWS = 100
FAILURES_SHOWN = 200

SHAPES = (({}, "one node a job"),
          ({"group_above": GROUP_ABOVE}, f"the jobs of a rule with more than {GROUP_ABOVE} of them as one node"),
          ({"rules": True}, "one node a rule"))


def write_report(path: str, ref: str, load_workflow: Callable[[], object]) -> str:
    """Write the report of run ``ref`` to ``path``; what to tell the user."""
    workflow, problem = None, None
    try:
        workflow = load_workflow()
    except FlowError as e:  # the history is still worth a report
        problem = f"The Flowfile could not be loaded, so the graph is not drawn: {e.render()}"
    records = Records.open(".flow")
    if not records.runs(1):
        raise UserError(f"no run is recorded in {os.path.abspath('.flow')} yet",
                        "Run `flow run` first: `flow report` shows the runs it records.")
    run = records.run(ref)
    attempts = records.attempts(run.id)
    shape = None
    if workflow is not None:
        try:
            shape = run_graph(workflow, run, attempts, records.recorded_jobs())
        except FlowError as e:
            problem = f"The graph of this run's targets could not be made from the Flowfile: {e.render()}"
    _write(path, page(run, attempts, records.rule_stats(), records.runs(HISTORY_ROWS), shape, problem))
    return f"wrote {path}: run {run.number}, {_plural(len(attempts), 'job attempt')}"


def _write(path: str, text: str) -> None:
    """``text`` to ``path``, written beside it and renamed: a browser never
    opens half a report."""
    partial = f"{path}.{os.getpid()}.partial"
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(partial, path)
    except OSError as e:
        if os.path.exists(partial):
            os.remove(partial)
        raise UserError(f"-o {path}: {e.strerror}", "Give a file in a directory you can write to.") from None


# the graph ---------------------------------------------------------------------------


class RunGraph:
    """The run's graph as drawn, with what became of its jobs."""

    def __init__(self, g: Graph, how: str, status: dict[str, str], steps: dict[str, str], missing: int):
        self.graph = g
        self.how = how  # which shape, in words
        self.status = status  # job id -> ran, uptodate, failed, notreached
        self.steps = steps  # job id -> rule name, for the jobs that have an action (not rule all's)
        self.missing = missing  # jobs the run attempted that the graph no longer has

    def node_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter] = {}
        for job, key in self.graph.node_of.items():
            counts.setdefault(key, Counter())[self.status[job]] += 1
        return {key: dict(c) for key, c in counts.items()}

    def rule_counts(self) -> dict[str, dict[str, int]]:
        """Per rule with an action, how many of its jobs ended in each status."""
        counts: dict[str, Counter] = {}
        for job, rule in self.steps.items():
            counts.setdefault(rule, Counter())[self.status[job]] += 1
        return {rule: dict(c) for rule, c in counts.items()}


def run_graph(workflow, run: RunRow, attempts: list[AttemptRow], recorded: set[str]) -> RunGraph:
    """The jobs the run's targets need (as the Flowfile says now), each
    with its status, in the finest shape that stays readable."""
    from ..graph.dag import DAG

    d = DAG(workflow)
    jobs = d.reachable(d.targets(list(run.targets)))
    g, how = _shaped(jobs)
    missing = len({a.job for a in attempts} - {job.id for job in jobs})
    steps = {job.id: job.rule.name for job in jobs if job.rule.action is not None}
    return RunGraph(g, how, job_statuses(jobs, attempts, recorded), steps, missing)


def _shaped(jobs: list) -> tuple[Graph, str]:
    """The graph by job if it has few enough nodes, else with the jobs of
    the rules that have many grouped, else by rule."""
    for options, how in SHAPES[:-1]:
        g = graph(jobs, **options)
        if len(g.nodes) <= MAX_NODES:
            return g, how
    options, how = SHAPES[-1]
    return graph(jobs, **options), how


def job_statuses(jobs: list, attempts: list[AttemptRow], recorded: set[str]) -> dict[str, str]:
    """What became of each job (dependencies before dependants) in a run of
    these ``attempts``. A job without an action (``rule all``) only gathers:
    it ran when something it needs ran."""
    last = {a.job: a for a in attempts}  # (in start order: a retry after its failure)
    status: dict[str, str] = {}
    for job in jobs:
        deps = [status[d.id] for d in job.deps if d.id in status]
        if job.id in last:
            status[job.id] = "ran" if last[job.id].status == 0 else "failed"
        elif any(s in ("failed", "notreached") for s in deps):
            status[job.id] = "notreached"
        elif job.rule.action is None:
            status[job.id] = "ran" if "ran" in deps else "uptodate"
        elif job.id in recorded or not job.outputs:
            status[job.id] = "uptodate"
        else:
            status[job.id] = "notreached"
    return status


# the page ----------------------------------------------------------------------------


def page(run: RunRow, attempts: list[AttemptRow], stats: list[RuleStats], runs: list[RunRow],
         shape: RunGraph | None, problem: str | None) -> str:
    """The whole HTML document."""
    title = f"flow run {run.number}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        'style-src \'unsafe-inline\'; script-src \'unsafe-inline\'; img-src data:">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">', f"<title>{esc(title)}</title>", f"<style>{CSS}</style></head><body>",
        _header(run, title), _graph_section(shape, problem), _timeline_section(run, attempts),
        _failures_section(attempts), _stats_section(stats, shape), _history_section(runs, run),
        f'<footer>Written by flow {esc(__version__)} on {when_text(time.time())} in {esc(os.getcwd())}.</footer>',
        f"<script>{SCRIPT}</script></body></html>", ""])


def _header(run: RunRow, title: str) -> str:
    took = seconds_text(run.seconds) if run.seconds is not None else "still running or killed"
    facts = [f"started {when_text(run.started)}", f"took {took}", f"{run.ran:,} ran", f"{run.up_to_date:,} up to date",
             f"{run.failed:,} failed", _plural(run.total, "job")]
    if run.cores:
        facts.append(f"{run.cores} cores")
    command = f"<code>{esc(shlex.join(run.command))}</code>" if run.command else ""
    log = f' · console log <code>.flow/{esc(run.log)}</code>' if run.log else ""
    return (f'<header><h1>{esc(title)} <span class="outcome {esc(run.outcome)}">{esc(run.outcome)}</span></h1>'
            f'<p class="meta">{" · ".join(esc(f) for f in facts)}</p><p class="meta">{command}{log}'
            f' · run id <code>{esc(run.id)}</code></p></header>')


def _legend(statuses: list[str]) -> str:
    items = "".join(f'<span class="key"><i style="background:{RUN_STATUS[s][1]};border-color:{RUN_STATUS[s][2]}">'
                    f"</i>{esc(RUN_STATUS[s][0])}</span>" for s in statuses)
    return f'<p class="legend">{items}</p>'


def _graph_section(shape: RunGraph | None, problem: str | None) -> str:
    head = '<section id="graph"><h2>Jobs</h2>'
    if shape is None:
        return f'{head}<p class="note">{esc(problem or "")}</p></section>'
    counts = Counter(shape.status[job] for job in shape.steps)
    notes = [f"{_plural(len(shape.steps), 'job')} ({count_text(dict(counts))}), drawn {shape.how}. "
             "Up to date: not run by this run, its outputs recorded by flow. Not reached: not run, needing a job "
             "that failed or was not reached, or stopped before. Hover over a node for its jobs."]
    if shape.missing:
        notes.append(f"{shape.missing:,} jobs this run attempted are not in the Flowfile's graph now "
                     "(the Flowfile changed since); the timeline shows them.")
    return (f'{head}{_legend(list(RUN_STATUS))}<p class="note">{esc(" ".join(notes))}</p>'
            f'<div class="scroll">{graph_svg(shape.graph, shape.node_counts())}</div></section>')


def _timeline_section(run: RunRow, attempts: list[AttemptRow]) -> str:
    t = timeline(attempts, run.started, run.ended)
    notes = [f"{_plural(len(attempts), 'job attempt')} on {_plural(t.slots, 'worker slot')}, over "
             f"{seconds_text(t.span)} from the "
             "run's start. Hover over a bar for the job, its time, CPU, memory and why it ran."]
    if t.note:
        notes.append(t.note)
    if not attempts:
        notes = ["This run ran no job."]
    return (f'<section id="timeline"><h2>Timeline</h2>{_legend(["ran", "failed"])}'
            f'<p class="note">{esc(" ".join(notes))}</p><div class="scroll">{timeline_svg(t)}</div></section>')


def _failures_section(attempts: list[AttemptRow]) -> str:
    last = {a.job: a for a in attempts}
    failed = [a for a in last.values() if a.status != 0]
    if not failed:
        return ""
    rows = "".join(f"<tr><td>{esc(a.label)}</td>{_num(a.attempt, str(a.attempt))}"
                   f"{_num(a.status, str(a.status))}{_num(a.seconds, seconds_text(a.seconds))}"
                   f"<td>{esc(a.reason or '')}</td></tr>" for a in failed[:FAILURES_SHOWN])
    more = (f'<p class="note">and {len(failed) - FAILURES_SHOWN:,} more; the console log has them all.</p>'
            if len(failed) > FAILURES_SHOWN else "")
    return ('<section id="failures"><h2>Failed jobs</h2><table class="sortable"><thead><tr><th>job</th>'
            '<th>attempt</th><th>status</th><th>time</th><th>why it ran</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>{more}</section>")


def _stats_section(stats: list[RuleStats], shape: RunGraph | None) -> str:
    this_run = shape.rule_counts() if shape is not None else {}
    by_rule = {s.rule: s for s in stats}
    rows = []
    for rule in sorted(set(by_rule) | set(this_run)):
        s = by_rule.get(rule)
        cells = [f"<td>{esc(rule)}</td>", f"<td>{esc(count_text(this_run.get(rule, {})))}</td>"]
        if s is None:
            cells.append('<td colspan="10" class="none">no attempt recorded</td>')
        else:
            cells += [_num(s.runs, f"{s.runs:,}"), _num(s.failures, f"{s.failures:,}"),
                      *(_seconds_cell(v) for v in (s.p50, s.p95, s.p99, s.max, s.mean_cpu)),
                      _size_cell(None if s.peak_rss_kb is None else s.peak_rss_kb * 1024),
                      _size_cell(s.bytes_in), _size_cell(s.bytes_out)]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    heads = ["rule", "this run", "attempts", "failed", "p50", "p95", "p99", "max", "mean CPU", "peak memory",
             "read", "written"]
    return ('<section id="stats"><h2>Per rule</h2><p class="note">Durations of the attempts that succeeded, over '
            "the whole history; CPU in seconds per attempt. Click a heading to sort.</p>"
            f'<table class="sortable"><thead><tr>{"".join(f"<th>{h}</th>" for h in heads)}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>")


def _history_section(runs: list[RunRow], shown: RunRow) -> str:
    rows = []
    for r in runs:
        mark = ' class="this"' if r.id == shown.id else ""
        took = _seconds_cell(r.seconds)
        rows.append(f'<tr{mark}>{_num(r.number, str(r.number))}{_num(r.started, when_text(r.started))}{took}'
                    f'<td><span class="outcome {esc(r.outcome)}">{esc(r.outcome)}</span></td>'
                    f"{_num(r.ran, f'{r.ran:,}')}{_num(r.up_to_date, f'{r.up_to_date:,}')}"
                    f"{_num(r.failed, f'{r.failed:,}')}{_num(r.total, f'{r.total:,}')}"
                    f"<td><code>{esc(shlex.join(r.command))}</code></td></tr>")
    heads = ["run", "started", "took", "outcome", "ran", "up to date", "failed", "jobs", "command"]
    return (f'<section id="history"><h2>Runs</h2><p class="note">{"The last run" if len(runs) == 1 else f"The last {len(runs)} runs, the newest first"}.</p>'
            f'<table class="sortable"><thead><tr>{"".join(f"<th>{h}</th>" for h in heads)}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>")


def _num(value: float | None, text: str) -> str:
    """A number's cell: right-aligned, sorted by its value (none sorts first)."""
    return f'<td class="n" data-v="{-1 if value is None else value}">{esc(text)}</td>'


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _seconds_cell(value: float | None) -> str:
    return _num(value, "–" if value is None else seconds_text(value))


def _size_cell(value: float | None) -> str:
    return _num(value, "–" if value is None else size_text(value))


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212529;margin:0 24px 40px;
background:#fff}
header{border-bottom:1px solid #dee2e6;padding:10px 0 6px}
h1{font-size:22px;margin:6px 0}h2{font-size:17px;margin:18px 0 4px}
.meta{margin:2px 0;color:#495057}.note{margin:2px 0 6px;color:#495057;font-size:13px;max-width:110ch}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f1f3f5;padding:1px 4px;border-radius:3px}
.outcome{font-size:13px;padding:2px 8px;border-radius:10px;background:#e9ecef;vertical-align:middle}
.outcome.ok{background:#b2f2bb}.outcome.failed,.outcome.killed{background:#ffc9c9}
.outcome.interrupted,.outcome.running{background:#fff3bf}
.legend{margin:2px 0;font-size:13px}.key{margin-right:14px;white-space:nowrap}
.key i{display:inline-block;width:12px;height:12px;border:1.5px solid;border-radius:3px;margin-right:5px;
vertical-align:-2px}
.scroll{overflow:auto;max-height:72vh;border:1px solid #e9ecef;border-radius:6px;padding:4px}
svg text{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;fill:#212529}
svg text.slot,svg text.tick{font-size:11px;fill:#495057}
.node:hover rect:first-of-type{stroke-width:2.5}.bar:hover{stroke:#000;stroke-width:1.5}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #e9ecef;
text-align:left;vertical-align:top}
th{background:#f8f9fa;cursor:pointer;user-select:none;white-space:nowrap}th:hover{background:#e9ecef}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.none{color:#868e96}
tr.this td{background:#e7f5ff}footer{margin-top:24px;color:#868e96;font-size:12px}
"""

# Sorting a table by a click on its heading: numbers by their data-v, words as words.
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], column = th.cellIndex;
  const up = th.dataset.order !== "up";
  th.dataset.order = up ? "up" : "down";
  const key = (row) => {
    const cell = row.cells[column];
    return cell && cell.dataset.v !== undefined ? parseFloat(cell.dataset.v) : (cell ? cell.textContent : "");
  };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
  rows.forEach((row) => body.appendChild(row));
}));
"""
