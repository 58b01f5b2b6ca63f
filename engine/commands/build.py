"""One build: load the workflow, infer the jobs, run what is out of date.

``flow run`` calls it once; ``flow watch`` calls it again after each change
(and reads the workflow and jobs it left in ``Build`` to know what to
watch). Errors are raised, for the caller to show.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import sys
import time
from dataclasses import dataclass, field

from flow.grammar.errors import did_you_mean

from flow import FlowError

from ..decide.triggers import TRIGGERS
from ..errors import UserError
from ..load.resources import ResourceError, normalized


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
    no_graph_cache: bool = False  # infer every job, work out every key: neither .flow/graph nor .flow/keys
    printshellcmds: bool = False
    quiet: bool = False
    explain: bool = False
    flowfile: str | None = None
    config_items: tuple[str, ...] = ()
    configfiles: tuple[str, ...] = ()  # --configfile, merged over the Flowfile's configfile:
    until: tuple[str, ...] = ()  # rules or files: run only these jobs and what they need
    omit_from: tuple[str, ...] = ()  # rules or files: leave out these jobs and what needs them
    set_threads: dict[str, int] = field(default_factory=dict)  # rule -> threads
    set_resources: dict[str, dict[str, int | float | str]] = field(default_factory=dict)  # rule -> name -> value
    retries: int | None = None  # for rules without retries:
    rerun_triggers: frozenset[str] = frozenset(TRIGGERS)
    log_format: str = "text"  # json: the run's events as JSON lines on stdout (run.stream), the terminal quiet
    events: str | None = None  # --events FILE: those lines appended to FILE too ("-": stdout)
    executor: str = "local"  # or "dask": run.cluster
    scheduler_address: str | None = None  # the Dask cluster's (None: a local one)
    latency_wait: float | None = None  # seconds a finished job's outputs may take to appear (None: the executor's)
    cache: str | None = None  # --cache DIR: a shared cache of job results (run.shared_cache)


@dataclass
class Build:
    """What a build found, as far as it got (the workflow may fail to load)."""

    wf: object | None = None
    dag: object | None = None
    jobs: list = field(default_factory=list)
    summary: object | None = None


def build(o: RunOptions, result: Build | None = None, freeze: bool = True, summary_line: bool = True,
          needs_graph: bool = False) -> Build:
    """Run one build in the current directory. ``freeze``: move the graph out
    of the garbage collector's sight for good (right for a one-shot run; a
    watcher that builds again and again must not, or every graph would stay).
    ``needs_graph``: leave the jobs in ``result`` even when a stamp proves
    there is nothing to do (``flow watch`` watches their files)."""
    if o.log_format == "text" and not o.events:
        return _build(o, result or Build(), freeze, summary_line, needs_graph)
    from ..run.stream import event_stream

    with event_stream(o) as stream:  # (its last line, run_finished, says how the build ended)
        return _build(o, result or Build(), freeze, summary_line, True, stream)


def _build(o: RunOptions, result: Build, freeze: bool, summary_line: bool, needs_graph: bool,
           stream=None) -> Build:
    from ..decide.state import State
    from ..run.events import Observers
    from ..run.lock import RunLock
    from .report import Reporter, summary_text

    started = time.monotonic()
    wf, preparer, cores = _loaded(o, result)
    definitions = None if o.no_graph_cache else definitions_of(wf, preparer)
    graph = graph_cache(definitions, o) if definitions else None
    stamp = read_stamp(graph, o, wf) if graph is not None else None
    may_prove = stamp is not None and not needs_graph
    cached = None if may_prove else _infer(o, wf, graph, result, freeze)
    lock = None if o.dry_run else RunLock(".flow").acquire()
    log = None
    try:
        if lock is not None:
            clear_scratch()
        # (Under the lock: what the stamp is compared with is what the run decides with.)
        state = State(".flow", readonly=o.dry_run, rows=not may_prove)
        stamp = still_current(stamp, state)
        proven = may_prove and stamp is not None and stamp.holds(_checks_hold(wf))
        if may_prove and not proven:
            cached = _infer(o, wf, graph, result, freeze, stamp)
        reporter = Reporter(quiet=o.quiet or o.log_format == "json", printshellcmds=o.printshellcmds, explain=o.explain)
        events = Observers(reporter)  # with the run history and an event stream: further observers
        if stream is not None:
            events.add(stream.in_run(lock))
        history, log = record_history(events, state, lock, o, cores)
        if lock is not None and lock.stopped_text():
            events.note(lock.stopped_text())
        for w in state.warnings:
            events.note(f"warning: {w}")
        state.warn = lambda w: events.note(f"warning: {w}")
        if proven:
            if lock is not None:
                stamp.save_settled(".flow")
            summary = result.summary = _proved(events, stamp, state)
        else:
            vouching = stamp if stamp is not None and cached and graph.serial == stamp.graph else None
            summary = result.summary = _run(o, wf, preparer, cores, state, graph, cached, vouching, definitions,
                                             result, events, reporter, history, log, lock, narrow=stream is None)
        if summary_line:
            took = time.monotonic() - started
            reporter.summary(summary_text(summary, took, dry_run=o.dry_run, touch=o.touch))
            if log is not None:
                log.summary(summary_text(summary, took, touch=o.touch))
    finally:
        if log is not None:
            log.out.close()
        if lock is not None:
            lock.release()
    return result


def _loaded(o: RunOptions, result: Build):
    """The workflow, loaded with the command line's config and rule options;
    its preparer and the cores of the run."""
    from ..load.config import parse_config_overrides
    from ..load.loader import find_flowfile, load
    from ..load.parsed import ParseCache
    from ..run.prepare import Preparer

    parses = ParseCache(".flow", readonly=o.dry_run)
    gc.disable()  # (see _infer)
    try:
        overrides = parse_config_overrides(list(o.config_items), o.configfiles)
        wf = result.wf = load(find_flowfile(o.flowfile), overrides, parses.parse_file)
    finally:
        gc.enable()
    parses.save()
    wf.sources.extend(os.path.abspath(name) for name in o.configfiles)  # (watched, as configfile:s are)
    check_rule_names(wf, "-R", o.forcerun)
    apply_rule_options(wf, o)
    cores = o.cores or os.cpu_count() or 1
    return wf, Preparer(wf, cores), cores


def _infer(o: RunOptions, wf, graph, result: Build, freeze: bool, stamp=None) -> bool:
    """The jobs of the build, into ``result``: the graph cache's if it holds
    them, else inferred (and kept in the cache). True if from the cache. A
    ``stamp`` observed in this run answers for the paths it saw."""
    from ..graph.dag import DAG

    # The graph is built once and lives as long as the run: the cyclic garbage
    # collector would walk it again and again while it grows (a third of the time).
    gc.disable()
    try:
        cached = graph.load(wf, stamp.seen if stamp is not None else None) if graph is not None else None
        if cached is None:
            dag = DAG(wf)
            jobs = select(dag, dag.targets(list(o.targets)), o.until, o.omit_from)
        else:
            dag, jobs = cached
        result.dag, result.jobs = dag, jobs
        if freeze:
            gc.freeze()
    finally:
        gc.enable()
    return cached is not None


def _run(o: RunOptions, wf, preparer, cores: int, state, graph, cached: bool, stamp, definitions, result: Build,
         events, reporter, history, log, lock, narrow: bool = True):
    """Decide the jobs and run those out of date; the run's summary. A
    stamp (``decide.stamp``) of this graph and store vouches for the jobs
    none of whose files changed, and, if ``narrow`` (no event about each
    job is wanted), the plan holds only the jobs a change can reach; a run
    after which all are up to date leaves one."""
    from ..decide.hashing import Hasher
    from ..decide.memo import KeyMemo
    from ..decide.rebuild import Rebuilder
    from ..run.outputs import Outputs
    from ..run.plan import Plan
    from ..run.scheduler import Options, Scheduler

    dag, jobs = result.dag, result.jobs
    order = graph.order if cached else dag.reachable(jobs)
    planned = stamp.reach(order) if stamp is not None and narrow else order
    if not state.rows:  # (the stamp held until now: the records of the jobs planned will do)
        state.load_rows(_files_of(planned, stamp) if planned is not order else None)
        if stamp is not None and state.mark() != stamp.mark:  # (a store found damaged now is a new one)
            stamp, planned = None, order
    # As in Snakemake, temp() files a target rule without outputs gathers
    # (`rule all: input: ...`) are kept.
    target_paths = {p for j in jobs for p in (j.outputs or j.inputs)}
    if graph is not None and not cached:  # (as inferred: before a checkpoint grows it)
        graph.save(dag, jobs, order)
    hasher = Hasher(state.files, stamp.kept if stamp is not None else None)
    memo = KeyMemo(".flow", definitions, readonly=o.dry_run) if definitions else None
    rebuilder = Rebuilder(state, hasher, preparer, forceall=o.forceall, forcerules=set(o.forcerun),
                          targets=target_paths, triggers=o.rerun_triggers, memo=memo, stamp=stamp)
    executor = None if o.dry_run else make_executor(o, cores, lock)
    if executor is not None and not o.touch:
        executor.warm(worker_kinds(wf))
    options = Options(cores=cores * in_flight(o), resources=o.resources, keep_going=o.keep_going,
                      dry_run=o.dry_run, notemp=o.notemp, touch=o.touch)
    outputs = Outputs(dag, state, hasher, preparer, executor, events)
    outputs.latency_wait = o.latency_wait if o.latency_wait is not None else 5.0 if o.executor == "dask" else 0.0
    if o.cache and not o.dry_run:
        from ..run.shared_cache import SharedCache

        if os.path.exists(o.cache) and not os.path.isdir(o.cache):
            raise UserError(f"--cache {o.cache}: not a directory", "Give a directory (made if missing) for the "
                            "shared cache, or leave out --cache (and FLOW_CACHE).")
        outputs.cache = SharedCache(os.path.abspath(o.cache))
    outputs.run_id = history.run_id if history is not None else None
    plan = Plan(dag, target_paths, dry_run=o.dry_run, release_temps=not o.notemp,
                proved=stamp.left_out(planned) if planned is not order else (0, 0))
    if reporter.draws_bar and not o.dry_run:
        from ..run.eta import Eta

        reporter.eta = Eta(lambda: plan.jobs.values(), typical_seconds, cores)
    scheduler = Scheduler(plan, rebuilder, preparer, outputs, executor, events, options)
    stopped = True
    try:
        summary = scheduler.run(planned)
        stopped = False
        if graph is not None and memo is not None and not (o.dry_run or summary.blocked) and stamps(o, wf):
            write_stamp(graph, o, dag, state, plan.jobs.values(), rebuilder, hasher, stamp,
                        narrowed=planned is not order)
    except BaseException as e:
        ended_badly(history, log, e)
        raise
    finally:
        if executor is not None:
            executor.shutdown()
            if stopped:  # interrupted or failed: what left its process group goes too
                lock.stop_escaped()
            clear_scratch()
        reporter.close()
        state.close()
        if memo is not None:
            memo.save()
    return summary


def make_executor(o: RunOptions, cores: int, lock):
    """Where the jobs of a run go: the local process pool, or a Dask cluster
    (which keeps the pool for what stays on this machine)."""
    from ..run.local import LocalExecutor

    local = LocalExecutor(cores, keep_fds=lock.inherited_fds, env=lock.job_env())
    if o.executor != "dask":
        return local
    try:
        from ..run.cluster import DaskExecutor
    except ImportError as e:
        local.shutdown()
        raise UserError(f"--executor dask needs Dask's distributed scheduler ({e})",
                        "Install it: pip install 'flow[dask]'.") from None
    try:
        return DaskExecutor(o.scheduler_address, cores, local)
    except BaseException:
        local.shutdown()
        raise


def in_flight(o: RunOptions) -> int:
    """How many times -j jobs the executor is given at once: a cluster's
    workers bound what runs (``run.cluster``); the local pool runs what it is given."""
    if o.executor != "dask" or o.dry_run:
        return 1
    from ..run.cluster import IN_FLIGHT

    return IN_FLIGHT


def _files_of(jobs, stamp):
    """Every file ``jobs`` read, write or run (as a stamp keeps them)."""
    for job in jobs:
        yield from job.inputs
        yield from job.written
        yield from stamp.sources.get(job.id, ())


def _proved(events, stamp, state):
    """A run the stamp proves has nothing to do: told as a run that decided
    every job up to date is (its total, its summary), without the jobs."""
    from ..run.summary import Summary

    started = time.monotonic()
    total, up_to_date = stamp.counts
    events.run_started(total)
    summary = Summary(up_to_date=up_to_date)
    summary.seconds = time.monotonic() - started
    events.run_ended(summary)
    state.close()
    return summary


def stamps(o: RunOptions, wf) -> bool:
    """Whether this run may read and leave a stamp: not when it forces jobs
    or records them unrun, and not for a workflow whose runs change it by
    design (``decide.stamp``)."""
    from ..decide.stamp import stampable

    return not (o.forceall or o.forcerun or o.touch) and stampable(wf.rules.values())


def read_stamp(graph, o: RunOptions, wf):
    """The stamp this run's graph, options and triggers left, if any."""
    from ..decide.stamp import Stamp, basis

    return Stamp.read(".flow", basis(graph.fingerprint, o.rerun_triggers)) if stamps(o, wf) else None


def still_current(stamp, state):
    """The stamp, observed now, if the store's records are still those it
    was written against; else None."""
    if stamp is None or state.mark() != stamp.mark:
        return None
    if not stamp.observed:
        stamp.observe()
    return stamp


def write_stamp(graph, o: RunOptions, dag, state, jobs, rebuilder, hasher, old, narrowed: bool = False) -> None:
    """Leave a stamp for the jobs of a run that ended with every one up to
    date (not a dry run's: its decisions are not facts). After a run that
    planned only the jobs a change could reach (``narrowed``), the old stamp
    is brought up to date instead, for the jobs it did not vouch for (the
    files of the others are as it keeps them); if it cannot be, it goes, and
    the next run decides every job."""
    from ..decide.stamp import FILE, Stamp, basis
    from ..graph.cache import checks_of

    mark = state.mark()
    if mark is None:
        return
    if not narrowed:
        Stamp.write(".flow", basis(graph.fingerprint, o.rerun_triggers), graph.serial,
                    checks_of(dag, graph.load_walks), mark, jobs, hasher, old, rebuilder.decided_sources)
    elif not old.rewrite(".flow", mark, [job for job in jobs if job.id not in rebuilder.vouched], hasher,
                         rebuilder.decided_sources, dag.probes):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(".flow", FILE))


def _checks_hold(wf):
    """The graph's checks, for a stamp: as ``graph.cache`` checks them."""
    from ..graph.cache import checks_hold
    from ..graph.confine import Confinement

    return lambda checks: checks_hold(wf, checks, Confinement(wf.sources))


def definitions_of(wf, preparer) -> str:
    """The hash of the workflow's definitions, which the graph cache and the
    key memo are written for (``decide.memo.definitions``)."""
    from ..decide.hashing import file_digest
    from ..decide.memo import definitions

    def digest(path: str) -> str | None:
        try:
            return file_digest(path)
        except OSError:
            return None

    return definitions(wf.sources, digest, wf.config, preparer.globals)


def graph_cache(definitions: str, o: RunOptions):
    """The jobs inferred by an earlier build of these definitions, targets and options (``graph.cache``)."""
    from ..graph.cache import GraphCache, fingerprint

    shape = fingerprint(definitions, o.targets, o.until, o.omit_from, o.set_threads, o.set_resources)
    return GraphCache(".flow", shape, readonly=o.dry_run)


def record_history(events, state, lock, o: RunOptions, cores: int):
    """A real run is recorded in the history (``run.history``), and its
    console output copied to its log: the recorder and the log's reporter,
    both observers of the run (None for a dry run)."""
    from ..run.history import RunRecorder
    from .report import Reporter

    if lock is None:
        return None, None
    history = RunRecorder(state, lock.run_id, ["flow", *sys.argv[1:]], o.targets, cores)
    events.add(history)
    stream = history.open_log()
    if stream is None:
        return history, None
    log = Reporter(printshellcmds=True, stream=stream, plan_stream=stream, live=False)
    events.add(log)
    return history, log


def ended_badly(history, log, e: BaseException) -> None:
    """A run that ended by an exception: its last words in its log, and, if
    not failed jobs or a signal (those the history tells itself), the
    outcome ``error`` in the history."""
    from ..errors import Interrupted, JobsFailed, Terminated

    text = e.render() if isinstance(e, FlowError) else f"flow: internal error: {type(e).__name__}: {e}"
    if log is not None and text:
        log.summary(text)
    if history is not None and not isinstance(e, (JobsFailed, Interrupted, KeyboardInterrupt, Terminated)):
        try:
            history.ended_by_error()
        except FlowError:
            pass  # the store itself failed: the run's row stays "running", read back as killed


def typical_seconds() -> dict[str, float]:
    """What each rule's jobs usually take, from the run history, for the ETA
    (read once a bar is drawn; none if the history cannot be read: the ETA
    is a convenience, never a reason to stop)."""
    import sqlite3

    from ..run.records import Records

    try:
        records = Records.open(".flow")
    except FlowError:
        return {}
    try:
        return records.typical_seconds()
    except (FlowError, sqlite3.Error):
        return {}
    finally:
        records.db.close()


def check_rule_names(wf, flag: str, names) -> None:
    """Each of ``names`` is a rule of ``wf``; a name that is not is the user's
    mistake, named with the flag and the rules there are."""
    for name in names:
        if name not in wf.rules:
            raise UserError(f"{flag} {name}: there is no rule of that name{_suggest(name, wf.rules)}",
                            _known_rules(wf))


def _suggest(name: str, rules) -> str:
    """``. Did you mean `RULE`?`` for a misspelt rule name, else ""."""
    suggestion = did_you_mean(name, rules)
    return f". {suggestion}" if suggestion else ""


def _known_rules(wf) -> str:
    names = sorted(wf.rules)
    shown = ", ".join(names[:30]) + (f", ... ({len(names)} in all)" if len(names) > 30 else "")
    return f"The rules are: {shown}." if names else "The Flowfile has no rules."


def apply_rule_options(wf, o: RunOptions) -> None:
    """``--set-threads``, ``--set-resources`` and ``--retries``, written over
    the loaded rules (the command line wins over the Flowfile, as in Snakemake)."""
    check_rule_names(wf, "--set-threads", o.set_threads)
    check_rule_names(wf, "--set-resources", o.set_resources)
    for name, threads in o.set_threads.items():
        wf.rules[name].threads = threads
    for name, values in o.set_resources.items():
        for resource, value in values.items():
            _check_resource(name, resource, value, o.resources)
        old = dict(wf.rules[name].resources)
        for resource in values:  # mem and mem_mb are one resource: setting either replaces both
            for size in ("mem", "disk"):
                if resource in (size, f"{size}_mb"):
                    old.pop(size, None)
                    old.pop(f"{size}_mb", None)
        try:
            wf.rules[name].resources = normalized({**old, **values})
        except ResourceError as e:
            raise UserError(f"--set-resources {name}: {e}") from None
    if o.retries is not None:
        for rule in wf.rules.values():
            if "retries" not in rule.directive_pos:
                rule.retries = o.retries


def _check_resource(rule: str, name: str, value: int | float | str, bounded: dict) -> None:
    """A string resource is passed to the job only: one that flow counts
    (bounded by --resources) must be a number (a text runtime is a time span)."""
    if not isinstance(value, str):
        return
    where = f"--set-resources {rule}:{name}={value}"
    if name in bounded:
        raise UserError(f"{where}: --resources {name}={bounded[name]} bounds {name}, so it must be a number")


def select(dag, targets: list, until: tuple[str, ...], omit_from: tuple[str, ...]) -> list:
    """The target jobs once ``--until`` and ``--omit-from`` are applied, as
    Snakemake applies them: --until runs only the jobs of its rules (a rule
    without wildcards, or a file, joins the targets) and what they need;
    --omit-from leaves out its jobs and every job that needs them, and runs
    the rest. (Jobs that only a checkpoint's outcome reveals are not known
    yet, so they are not selected here.)"""
    if until:
        targets = _until_jobs(dag, targets, until)
    if omit_from:
        targets = _without_omitted(dag, targets, omit_from)
    return targets


def _until_jobs(dag, targets: list, names: tuple[str, ...]) -> list:
    rules = {n for n in names if _rule_or_file(dag, "--until", n)}
    chosen = [j for j in dag.reachable(targets) if j.rule.name in rules and j.rule.wildcard_names]
    for name in names:  # a rule without wildcards or a file is a target of its own
        if name not in rules or not dag.wf.rules[name].wildcard_names:
            chosen.extend(dag.targets([name]))
    return list({id(j): j for j in chosen}.values())


def _without_omitted(dag, targets: list, names: tuple[str, ...]) -> list:
    rules = {n for n in names if _rule_or_file(dag, "--omit-from", n)}
    files = {os.path.normpath(n) for n in names if n not in rules}
    jobs = dag.reachable(targets)
    consumers: dict[int, list] = {}
    for job in jobs:
        for dep in job.deps:
            consumers.setdefault(id(dep), []).append(job)
    left_out = [j for j in jobs if j.rule.name in rules or not files.isdisjoint(j.outputs)]
    seen = {id(j) for j in left_out}
    while left_out:  # and everything downstream of them
        for consumer in consumers.get(id(left_out.pop()), ()):
            if id(consumer) not in seen:
                seen.add(id(consumer))
                left_out.append(consumer)
    # What is left runs: the targets not left out, and what the left-out jobs needed.
    kept = [t for t in targets if id(t) not in seen]
    kept += [d for j in jobs if id(j) in seen for d in j.deps if id(d) not in seen]
    return list({id(j): j for j in kept}.values())


def _rule_or_file(dag, flag: str, name: str) -> bool:
    """True for a rule's name; False for a file some rule makes; else the user's mistake."""
    if name in dag.wf.rules:
        return True
    if not dag.index.candidates(os.path.normpath(name)):
        raise UserError(f"{flag} {name}: there is no rule of that name, and no rule makes a file of that name"
                        f"{_suggest(name, dag.wf.rules)}", _known_rules(dag.wf))
    return False


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
