"""The ``flow`` command (click).

Each command loads the workflow, builds the DAG and hands it to the
scheduler or prints it. Whatever ends a command is shown here, once: a
``FlowError`` (the tree and each exit code: ``errors.py``) by its
``render()``, exiting with its ``exit_code``; Ctrl-C, SIGTERM and SIGHUP,
click's refusals, a file flow cannot read or write and a bug in flow are made
the ``FlowError`` they are first. ``--debug`` adds a traceback. Before click
reads the arguments, options that take several words are spread out
(``--config a=1 b=2``, as in Snakemake) and a profile's defaults are found;
how, and how option values become ``RunOptions``, is ``options.py``'s.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

import click

from flow import FlowError, __version__

from ..errors import (
    FileAccessError,
    InternalError,
    Interrupted,
    OutputClosed,
    Terminated,
    UsageError,
    UserError,
)
from . import cache, recorded
from .common import CONTEXT, chdir, common_options, load_workflow, project_workflow, say
from .options import (
    build_flags,
    profile_defaults,
    run_options,
    selection,
    selection_flags,
    spread_values,
)
from .report import one_line, printable, status_text


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="flow")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """flow: a rule engine for data and ML pipelines.

    Rules in a Flowfile say which files they read and write; `flow run`
    builds what is out of date, in parallel."""
    ctx.obj = {"debug": debug}


@cli.command(context_settings=CONTEXT)
@build_flags
@selection_flags
@click.option("-n", "--dry-run", is_flag=True, help="List the jobs that would run, and why; run nothing.")
@click.option("--explain", is_flag=True, help="With -n (implied): every input or job behind each reason.")
@click.option("--touch", is_flag=True, help="Record existing outputs as up to date without running.")
@click.option("--list-target-rules", "--lt", "list_targets", is_flag=True,
              help="List the rules that can be targets by name (those without wildcards), and exit.")
@common_options
def run(directory, dry_run, explain, list_targets, _debug, _profile, **options) -> None:
    """Build TARGETS (files or rule names; default: the first rule)."""
    from .build import build

    chdir(directory)
    if list_targets:
        wf = load_workflow(None, options["flowfile"], options["config_items"], options["configfiles"])
        for name in sorted(n for n, rule in wf.rules.items() if not rule.wildcard_names):
            say(name)
        return
    build(run_options(dry_run=dry_run or explain, explain=explain, **options))


_STATUS_HEADINGS = {
    "missing": "output missing", "input": "input changed", "code": "code changed", "params": "params changed",
    "modified": "output modified outside flow", "unrecorded": "output never recorded by flow",
    "upstream": "an input will be made again", "outputs": "output paths changed", "temp": "temp() file needed again",
    "forced": "forced",
}


@cli.command(context_settings=CONTEXT)
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the out-of-date jobs as JSON, for tools.")
@selection_flags
@common_options
def status(targets, as_json, directory, flowfile, config_items, configfiles, _debug, _profile, **selected) -> None:
    """What is out of date for TARGETS, and why, grouped by reason; runs nothing.
    Exits 1 if anything is out of date, 0 if all is up to date (as `make -q`)."""
    from .build import RunOptions, build

    chdir(directory)
    o = RunOptions(targets=tuple(targets), dry_run=True, quiet=True, flowfile=flowfile,
                   config_items=tuple(config_items), configfiles=tuple(configfiles), **selection(**selected))
    summary = build(o, summary_line=False).summary
    _show_status(summary, as_json)
    if summary.would_run or summary.undetermined:
        raise click.exceptions.Exit(1)


def _show_status(summary, as_json: bool) -> None:
    """The out-of-date jobs grouped by reason (or as JSON), and the summary line."""
    import json

    if as_json:
        click.echo(json.dumps({
            "out_of_date": [{"job": job.label, "rule": job.rule.name, "wildcards": dict(job.wildcards),
                             "reason": reason.kind, "detail": reason.detail, "changes": list(reason.files),
                             "paths": list(reason.paths)}
                            for job, reason in summary.would_run],
            "up_to_date": summary.up_to_date,
            "waiting_for_checkpoints": [job.label for job in summary.undetermined],
        }, indent=2))
        return
    groups: dict[str, list] = {}
    for job, reason in summary.would_run:
        groups.setdefault(reason.kind, []).append((job, reason))
    for kind, entries in groups.items():
        say(f"{_STATUS_HEADINGS.get(kind, kind)} ({len(entries)}):")
        for job, reason in entries:
            why = "; ".join(map(one_line, reason.files)) if reason.files else reason.detail
            say(f"  {one_line(job.label)}: {why}")
    say(status_text(summary), err=True)


@cli.command(context_settings=CONTEXT)
@build_flags
@selection_flags
@click.option("--debounce", type=click.FloatRange(min=0), default=0.2, show_default=True, metavar="SECONDS",
              help="Wait until changes have settled this long before building.")
@click.option("--clear", is_flag=True, help="Clear the screen before each build.")
@common_options
def watch(directory, debounce, clear, _debug, _profile, **options) -> None:
    """Build TARGETS, then build again what each change of a source, script,
    config or Flowfile affects, until Ctrl-C."""
    from .watch import Watcher

    chdir(directory)
    Watcher(run_options(**options), click.echo, debounce=debounce, clear=clear).run()


@cli.command(name="list", context_settings=CONTEXT)
@common_options
def list_rules(directory, flowfile, config_items, configfiles, _debug, _profile) -> None:
    """List the rules, what they make and what they read."""
    from .report import format_schema

    wf = load_workflow(directory, flowfile, config_items, configfiles)
    width = max((len(n) for n in wf.rules), default=0)
    for name, rule in wf.rules.items():
        kind = "checkpoint" if rule.checkpoint else "rule"
        action = rule.action.kind if rule.action is not None else "-"
        outs = ", ".join(one_line(s.text) for s in rule.outputs.specs) or "(no outputs)"
        say(f"{name:<{width}}  {kind:<10} {action:<6}  {outs}")
        if rule.inputs is not None and rule.inputs.specs:
            ins = [one_line(s.text) for s in rule.inputs.specs]
            shown = ", ".join(ins[:4]) + (f", ... ({len(ins)} in all)" if len(ins) > 4 else "")
            say(f"{'':<{width}}  {'':<10} {'':<6}  <- {shown}")
        elif rule.input_expr is not None:
            say(f"{'':<{width}}  {'':<10} {'':<6}  <- (known after a checkpoint)")
        if rule.schema:
            say(f"{'':<{width}}  {'':<10} {'':<6}  schema {format_schema(rule.schema)}")


@cli.command(context_settings=CONTEXT)
@click.option("-n", "--dry-run", is_flag=True, help="Show what would be removed.")
@click.option("--force", is_flag=True, help="Also remove protected() outputs.")
@common_options
def clean(dry_run, force, directory, flowfile, config_items, configfiles, _debug, _profile) -> None:
    """Remove the outputs flow made (never any other file)."""
    from ..run.lock import RunLock
    from .clean import clean_outputs

    project_workflow(directory, flowfile, config_items, configfiles)
    lock = None if dry_run else RunLock(".flow").acquire()
    if lock is not None and lock.stopped_text():
        say(lock.stopped_text(), err=True)
    try:
        clean_outputs(dry_run=dry_run, force=force, echo=say)
    finally:
        if lock is not None:
            lock.release()


@cli.command(context_settings=CONTEXT)
@common_options
def cancel(directory, flowfile, config_items, configfiles, _debug, _profile) -> None:
    """Stop the run in this directory, from another terminal, as Ctrl-C would."""
    from .cancel import cancel as cancel_run

    project_workflow(directory, flowfile, config_items, configfiles)
    cancel_run(echo=lambda text: say(text, err=True))


@cli.command(context_settings=CONTEXT)
@click.argument("targets", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "svg", "png"]), default="dot",
              show_default=True, help="Output format (svg and png are drawn by Graphviz's dot).")
@click.option("-o", "--output", "output", metavar="FILE", help="Write to FILE instead of standard output.")
@click.option("--rules", "--rulegraph", "rules", is_flag=True,
              help="Draw the rule graph: one node a rule (as Snakemake's --rulegraph).")
@click.option("--group-above", type=click.IntRange(min=0), default=8, show_default=True, metavar="N",
              help="Draw the jobs of a rule that has more than N as one node with a count (0: never).")
@click.option("--status", "with_status", is_flag=True,
              help="Colour the nodes by what `flow run` would do now (would run, up to date), with a legend.")
@common_options
def dag(targets, fmt, output, rules, group_above, with_status, directory, flowfile, config_items, configfiles,
        _debug, _profile) -> None:
    """Print the job graph (Graphviz DOT or Mermaid text, or an SVG or PNG picture)."""
    from ..graph.render import Statuses, render, to_dot, to_mermaid

    statuses = None
    if with_status:  # a dry run decides, as `flow run -n` and `flow status` do; nothing runs
        from .build import RunOptions, build

        chdir(directory)
        b = build(RunOptions(targets=tuple(targets), dry_run=True, quiet=True, flowfile=flowfile,
                             config_items=tuple(config_items), configfiles=tuple(configfiles)),
                  summary_line=False, needs_graph=True)
        d, jobs = b.dag, b.jobs
        statuses = Statuses({j.id for j, _ in b.summary.would_run}, {j.id for j in b.summary.undetermined})
    else:
        from ..graph.dag import DAG

        d = DAG(load_workflow(directory, flowfile, config_items, configfiles))
        jobs = d.targets(list(targets))
    draw = to_mermaid if fmt == "mermaid" else to_dot
    text = draw(d.reachable(jobs), rules=rules, group_above=group_above, statuses=statuses)
    if fmt in ("svg", "png"):
        data = render(text.encode(), fmt)
    else:  # text that may well be read on a terminal; a control character means nothing in a label
        data = printable(text).encode()
    if output:
        try:
            with open(output, "wb") as f:
                f.write(data)
        except OSError as e:
            raise UserError(f"-o {output}: {e.strerror}") from None
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


for command in recorded.COMMANDS:  # (history, stats, lineage, report: what runs recorded, read back)
    cli.add_command(command)
cli.add_command(cache.cache)  # (flow cache stats, flow cache prune: the shared cache)


def _on_sigterm(signum, frame):
    raise Terminated(signum)


# ---------------------------------------------------------------------- entry


def main(argv: list[str] | None = None) -> int:
    argv = spread_values(list(argv if argv is not None else sys.argv[1:]))
    for name in ("stdout", "stderr"):  # started with it closed (`2>&-`): say nothing rather than fail
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - lives as long as flow
    sys.set_int_max_str_digits(0)  # a long number in a config or Flowfile is the user's to have
    if hasattr(sys.stdout, "reconfigure"):  # a file name that is not UTF-8 is printed escaped, not fatal
        sys.stdout.reconfigure(errors="backslashreplace")
    debug = "--debug" in argv
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGHUP, _on_sigterm)  # the terminal closed: stop jobs as for SIGTERM
    try:
        code = cli.main(args=argv, prog_name="flow", standalone_mode=False, default_map=profile_defaults(argv, cli.commands))
        return code if isinstance(code, int) else 0  # (click returns an Exit's code: `flow status`'s 1)
    except click.exceptions.Exit as e:  # --help, --version: done, not an error
        return e.exit_code
    except FlowError as e:
        return _fail(e, debug)
    except (Exception, KeyboardInterrupt, Terminated) as e:
        return _fail(flow_error(e), debug)


def flow_error(e: BaseException) -> FlowError:
    """What ended a command, if not a FlowError, as the FlowError it is."""
    if isinstance(e, (KeyboardInterrupt, click.exceptions.Abort)):  # (click's word for Ctrl-C)
        return Interrupted(signal.SIGINT)
    if isinstance(e, Terminated):
        return Interrupted(e.signum)
    if isinstance(e, click.ClickException):
        return UsageError.of(e)
    if isinstance(e, BrokenPipeError):
        return OutputClosed()
    if isinstance(e, OSError):  # a file flow itself must read or write: permissions, a full disk
        return FileAccessError.of(e)
    return InternalError.of(e)


def _fail(error: FlowError, debug: bool) -> int:
    """Show ``error`` on stderr, escaped (a Flowfile excerpt, a file name),
    with the traceback of what was raised under --debug; its exit code."""
    text = error.render()
    if text:
        if debug:
            traceback.print_exc()
        say(text, err=True)
    return error.exit_code


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def entry() -> None:
    code = main()
    # Everything flow must finish is finished by now (jobs stopped, records
    # committed, the lock released, the store closed); the interpreter's own
    # teardown of a large graph would only add tens of milliseconds to every run.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
