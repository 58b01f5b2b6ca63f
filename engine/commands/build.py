"""One build: load the workflow, infer the jobs, run what is out of date.

``flow run`` calls it once; ``flow watch`` calls it again after each change
(and reads the workflow and jobs it left in ``Build`` to know what to
watch). Errors are raised, for the caller to show.
"""

from __future__ import annotations

import gc
import os
import shutil
import time
from dataclasses import dataclass, field

from ..errors import UserError


@dataclass
class RunOptions:
    targets: tuple[str, ...] = ()
    cores: int | None = None
    dry_run: bool = False
    forceall: bool = False
    forcerun: tuple[str, ...] = ()
    keep_going: bool = False
    resources: dict[str, float] = field(default_factory=dict)
    touch: bool = False
    notemp: bool = False
    printshellcmds: bool = False
    quiet: bool = False
    explain: bool = False
    flowfile: str | None = None
    config_items: tuple[str, ...] = ()


@dataclass
class Build:
    """What a build found, as far as it got (the workflow may fail to load)."""

    wf: object | None = None
    dag: object | None = None
    jobs: list = field(default_factory=list)
    summary: object | None = None


def build(o: RunOptions, result: Build | None = None, freeze: bool = True, summary_line: bool = True) -> Build:
    """Run one build in the current directory. ``freeze``: move the graph out
    of the garbage collector's sight for good (right for a one-shot run; a
    watcher that builds again and again must not, or every graph would stay)."""
    from ..decide.hashing import Hasher
    from ..decide.rebuild import Rebuilder
    from ..decide.state import State
    from ..graph.dag import DAG
    from ..load.config import parse_config_overrides
    from ..load.loader import find_flowfile, load
    from ..run.events import Observers
    from ..run.executor import LocalExecutor
    from ..run.lock import RunLock
    from ..run.outputs import Outputs
    from ..run.plan import Plan
    from ..run.prepare import Preparer
    from ..run.scheduler import Options, Scheduler
    from .report import Reporter, summary_text

    result = result or Build()
    started = time.monotonic()
    # The graph is built once and lives as long as the run: the cyclic garbage
    # collector would walk it again and again while it grows (a third of the time).
    gc.disable()
    try:
        wf = result.wf = load(find_flowfile(o.flowfile), parse_config_overrides(list(o.config_items)))
        for rule in o.forcerun:
            if rule not in wf.rules:
                raise UserError(f"-R {rule}: there is no rule of that name", "`flow list` shows the rules.")
        dag = result.dag = DAG(wf)
        jobs = result.jobs = dag.targets(list(o.targets))
        if freeze:
            gc.freeze()
    finally:
        gc.enable()
    cores = o.cores or os.cpu_count() or 1
    lock = None if o.dry_run else RunLock(".flow").acquire()
    try:
        if lock is not None:
            clear_scratch()
        state = State(".flow", readonly=o.dry_run)
        reporter = Reporter(quiet=o.quiet, printshellcmds=o.printshellcmds, explain=o.explain)
        if lock is not None and lock.stopped_text():
            reporter.note(lock.stopped_text())
        for w in state.warnings:
            reporter.note(f"warning: {w}")
        state.warn = lambda w: reporter.note(f"warning: {w}")
        # As in Snakemake, temp() files a target rule without outputs gathers
        # (`rule all: input: ...`) are kept.
        target_paths = {p for j in jobs for p in (j.outputs or j.inputs)}
        hasher, preparer = Hasher(state.files), Preparer(wf, cores)
        rebuilder = Rebuilder(state, hasher, preparer, forceall=o.forceall,
                              forcerules=set(o.forcerun), targets=target_paths)
        executor = None if o.dry_run else LocalExecutor(cores, keep_fds=lock.inherited_fds, env=lock.job_env())
        if executor is not None and not o.touch:
            executor.warm(worker_kinds(wf))
        options = Options(cores=cores, resources=o.resources, keep_going=o.keep_going,
                          dry_run=o.dry_run, notemp=o.notemp, touch=o.touch)
        events = Observers(reporter)  # (a run history, an event stream: further observers)
        outputs = Outputs(dag, state, hasher, preparer, executor, events)
        plan = Plan(dag, target_paths, dry_run=o.dry_run, release_temps=not o.notemp)
        scheduler = Scheduler(plan, rebuilder, preparer, outputs, executor, events, options)
        stopped = True
        try:
            summary = result.summary = scheduler.run(jobs)
            stopped = False
        finally:
            if executor is not None:
                executor.shutdown()
                if stopped:  # interrupted or failed: what left its process group goes too
                    lock.stop_escaped()
                clear_scratch()
            reporter.close()
            state.close()
        if summary_line:
            took = time.monotonic() - started
            reporter.summary(summary_text(summary, took, dry_run=o.dry_run, touch=o.touch))
    finally:
        if lock is not None:
            lock.release()
    return result


def clear_scratch() -> None:
    """Empty the jobs' scratch space (DuckDB spills there) when no job runs:
    as this run holds the lock, what is in it was left by a job that ended."""
    if os.path.isdir(".flow/tmp"):
        shutil.rmtree(".flow/tmp", ignore_errors=True)


def worker_kinds(wf) -> set[str]:
    """What the workflow's Python workers will run: action kinds, and schema checks."""
    kinds = {r.action.kind for r in wf.rules.values() if r.action is not None and r.action.in_worker}
    if any(r.schema for r in wf.rules.values()):
        kinds.add("contracts")
    return kinds
