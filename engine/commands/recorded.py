"""The commands that read back what runs recorded: ``flow history``,
``flow stats``, ``flow lineage`` and ``flow report``. Each imports what it
shows with only when it runs (start-up is part of the UX)."""

from __future__ import annotations

import os

import click

from .common import CONTEXT, chdir, common_options, load_workflow, project_workflow, say


@click.command(context_settings={**CONTEXT, "ignore_unknown_options": True})  # (RUN may be -2)
@click.argument("run", required=False, metavar="[RUN]")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many of the last runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for tools.")
@common_options
def history(run, limit, as_json, directory, flowfile, config_items, configfiles, _debug, _profile) -> None:
    """The last runs (when, outcome, jobs run, failed and up to date, how long);
    with RUN (a number from the list, last, -2, or an id), that run's jobs and its log."""
    from .history import show_run, show_runs

    records = _records(directory, flowfile, config_items, configfiles)
    if run is None:
        show_runs(records, limit, as_json, say)
    else:
        show_run(records, run, as_json, say)


@click.command(context_settings=CONTEXT)
@click.argument("rule", required=False)
@click.option("--since", metavar="WHEN", help="Only jobs that ended since WHEN: a span (30m, 12h, 7d) or a date.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for tools.")
@common_options
def stats(rule, since, as_json, directory, flowfile, config_items, configfiles, _debug, _profile) -> None:
    """Per rule, from the run history: runs, failures, duration P50/P95/P99 and
    max, mean CPU, peak memory, bytes read and written."""
    from ..run.records import parse_since
    from .history import show_stats

    records = _records(directory, flowfile, config_items, configfiles, rule)
    show_stats(records, rule, parse_since(since) if since else None, as_json, say)


def _records(directory, flowfile, config_items, configfiles, rule: str | None = None):
    """The run history of the project here (its Flowfile's workdir: followed);
    ``rule``, if given, must be one of its rules or in its history."""
    from ..run.records import Records
    from .build import check_rule_names

    wf = project_workflow(directory, flowfile, config_items, configfiles, tolerant=True)
    records = Records.open(".flow")
    if rule is not None and wf is not None and not records.rule_stats(rule):
        check_rule_names(wf, "flow stats", [rule])
    return records


@click.command(context_settings=CONTEXT)
@click.argument("file")
@click.option("--downstream", is_flag=True, help="Show what derives from FILE instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the lineage as JSON (full hashes), for tools.")
@common_options
def lineage(file, downstream, as_json, directory, flowfile, config_items, configfiles, _debug, _profile) -> None:
    """What FILE derives from, as flow recorded it: the jobs that made it and
    its inputs (their commands, when they were made), the source files, each
    with its recorded hash and whether it changed since."""
    from .lineage import show_lineage

    wf = project_workflow(directory, flowfile, config_items, configfiles, tolerant=True)  # (commands not recorded)
    show_lineage(file, downstream, as_json, wf, echo=click.echo, warn=lambda text: say(text, err=True))


@click.command(context_settings=CONTEXT)
@click.option("-o", "--output", "output", default="report.html", show_default=True, metavar="FILE",
              help="The HTML file to write.")
@click.option("--run", "run_ref", default="last", show_default=True, metavar="REF",
              help="The run to report: its number (`flow history`), last, -2 (the one before), "
                   "or the start of its id.")
@common_options
def report(output, run_ref, directory, flowfile, config_items, configfiles, _debug, _profile) -> None:
    """Write one HTML file, which opens offline, on a run (the last by default):
    its job graph coloured by what became of each job, its timeline by worker
    slot, per-rule statistics and the history of runs."""
    from .html_report import write_report

    chdir(directory)
    output = os.path.abspath(output)  # (as given here; a Flowfile's workdir: moves where .flow is)
    say(write_report(output, run_ref, lambda: load_workflow(None, flowfile, config_items, configfiles)), err=True)


COMMANDS = (history, stats, lineage, report)
