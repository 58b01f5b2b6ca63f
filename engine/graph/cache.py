"""The graph cache, ``.flow/graph``: the jobs a build inferred, for the next
build of the same workflow to load instead of inferring them again.

Inferring the jobs matches every file name against the rules' patterns and
formats every path, a quarter of a run that has nothing to do. The graph is
a function of the workflow's definitions (``decide.memo.definitions``), of
the targets and options that shape it (``fingerprint``), and of what the
file system said while it was inferred, which the cache keeps and checks:

- each path the graph looked at and whether it existed (``DAG.probes``): a
  source input, a target file, an input of a rule that could not be chosen;
- each walk of glob_wildcards and the paths it matched, when the Flowfile
  was loaded and in input functions (``Env.globbed``);
- the directories outputs go to, and outputs written as absolute paths,
  still inside the working directory.

It is saved as inferred, before any job runs: a checkpoint grows the graph
during a run (``DAG.expand``) from what the checkpoint wrote, so that part
is inferred again in each run. One read loads it, with the order in which
the jobs the targets need are planned (``order``: the walk that finds them
is a tenth of a run that has nothing to do). A cache written for other
definitions, targets or options, one whose checks fail and a damaged one
(checksum) are not used; the file is replaced whole (written beside, then
renamed). ``--no-graph-cache`` neither reads nor writes it.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable

import xxhash

from .. import cachefile
from ..load.builtins import Glob, found_hash, matches, walk
from ..load.model import Workflow
from .confine import Confinement
from .dag import DAG
from .job import Job

FILE = "graph"
FORMAT = 4  # raise it when what a graph file holds changes
_NAME = b"flow-graph\0"
Seen = Callable[[str], "bool | None"]  # whether a path exists, as a run already saw it (None: not seen)


def fingerprint(definitions: str, targets: tuple[str, ...], until: tuple[str, ...], omit_from: tuple[str, ...],
                set_threads: dict, set_resources: dict) -> str:
    """What the graph depends on besides the file system."""
    shape = repr((FORMAT, definitions, targets, until, omit_from, sorted(set_threads.items()),
                  sorted((rule, sorted(values.items())) for rule, values in set_resources.items())))
    return xxhash.xxh3_128_hexdigest(shape.encode("utf-8", "surrogatepass"))


class GraphCache:
    def __init__(self, directory: str, fingerprint_: str, readonly: bool = False):
        self.path = os.path.join(directory, FILE)
        self.fingerprint = fingerprint_
        self.readonly = readonly  # a dry run writes nothing in .flow/
        self.load_walks = 0  # how many glob_wildcards walks loading the Flowfile made
        self.serial: str | None = None  # which graph file was loaded or saved (a stamp names it)
        self.order: list[Job] = []  # as loaded: every job the targets need, dependencies first

    def load(self, wf: Workflow, seen: Seen | None = None) -> tuple[DAG, list[Job]] | None:
        """The graph and the target jobs, if the cache holds them for this
        workflow and every check holds; else None. ``seen``: whether a path
        exists, as this run already saw it (None: not seen), so that a
        probe of a path it saw costs no ``stat``."""
        self.load_walks = len(wf.env.globbed)
        data = self._read()
        if data is None:
            return None
        try:
            fingerprint_, serial, checks, rows, producer, failed, targets, order = data
            probes, _, dag_globs, _ = checks
        except (TypeError, ValueError):
            return None
        dag = DAG(wf)
        if fingerprint_ != self.fingerprint or not checks_hold(wf, checks, dag.confinement, seen):
            return None
        jobs = _restore(wf, rows)
        if jobs is None:
            return None
        dag.jobs = {job.id: job for job in jobs}
        dag.producer = {path: jobs[i] if i >= 0 else None for path, i in producer.items()}
        dag.probes = probes
        self.serial = serial
        self.order = [jobs[i] for i in order]
        dag.failed = failed  # (jobs refused for a missing input: a checkpoint's expansion must not try them again)
        wf.env.globbed.extend(Glob(base, re.compile(pattern, flags), found) for base, pattern, flags, found in dag_globs)
        return dag, [jobs[i] for i in targets]

    def save(self, dag: DAG, targets: list[Job], order: list[Job] | None = None) -> None:
        """Keep the graph as inferred (call ``load`` first, and this before
        any job runs), with the ``order`` of the jobs the targets need
        (``DAG.reachable``: worked out here if not given). Best effort: a
        graph that cannot be kept costs the next run time, never a wrong
        decision."""
        if self.readonly:
            return
        if order is None:
            order = dag.reachable(targets)
        jobs = list(dag.jobs.values())
        number = {id(job): i for i, job in enumerate(jobs)}
        try:
            rows = [_row(job, number) for job in jobs]
            producer = {path: number[id(job)] if job is not None else -1 for path, job in dag.producer.items()}
            serial = os.urandom(8).hex()
            data = (self.fingerprint, serial, checks_of(dag, self.load_walks), rows, producer, dag.failed,
                    [number[id(job)] for job in targets], [number[id(job)] for job in order])
            payload = pickle.dumps(data, protocol=5)
        except (KeyError, pickle.PicklingError, TypeError, AttributeError):
            return  # (a job outside the graph, params that do not pickle: nothing kept)
        if cachefile.write(self.path, _NAME, payload):
            self.serial = serial

    def _read(self):
        payload = cachefile.read(self.path, _NAME)
        if payload is None:
            return None
        try:
            return pickle.loads(payload)
        except Exception:  # noqa: BLE001 - a class gone since it was written, ...: not used
            return None


def checks_of(dag: DAG, load_walks: int) -> tuple:
    """What the file system said while ``dag`` was inferred (see the module's
    docstring): its probes, the Flowfile's walks (the first ``load_walks``),
    the walks of input functions, and the directories outputs go to."""
    globbed = dag.wf.env.globbed
    return (dag.probes, [_glob(g) for g in globbed[:load_walks]],
            sorted({_glob(g) for g in globbed[load_walks:]}), dag.confinement.checked)


def checks_hold(wf: Workflow, checks: tuple, confinement: Confinement, seen: Seen | None = None) -> bool:
    """Whether the file system still says what ``checks`` kept, for ``wf``
    as just loaded (its own walks are compared, not made again); a probe of
    a path ``seen`` answers for is not made again either."""
    try:
        probes, load_globs, dag_globs, inside = checks
    except (TypeError, ValueError):
        return False
    if [_glob(g) for g in wf.env.globbed] != load_globs:
        return False
    exists = os.path.exists if seen is None else lambda path: _exists(path, seen)
    if any(exists(path) != existed for path, existed in probes.items()):
        return False
    if any(found_hash(matches(walk(base), re.compile(pattern, flags))) != found
           for base, pattern, flags, found in dag_globs):
        return False
    return confinement.still_inside(*inside)


def _exists(path: str, seen: Seen) -> bool:
    known = seen(path)
    return os.path.exists(path) if known is None else known


def _glob(g: Glob) -> tuple[str, str, int, str]:
    return g.base, g.regex.pattern, g.regex.flags, g.found


# A job's fields, in the order a row keeps them.
def _row(job: Job, number: dict[int, int]) -> tuple:
    return (job.rule.name, job.wildcards, job.id, job.outputs, job.output_names, job.logs, job.log_names,
            job.benchmark, job.inputs, job.input_names, job.params, [number[id(d)] for d in job.deps],
            sorted(job.pending) if job.pending is not None else None, job.threads, job.resources)


def _restore(wf: Workflow, rows: list[tuple]) -> list[Job] | None:
    jobs: list[Job] = []
    deps_of: list[list[int]] = []  # (set once every job is made: a dependency may come later in the rows)
    rules = wf.rules
    new = Job.__new__
    for (rule, wildcards, id_, outputs, output_names, logs, log_names, benchmark, inputs, input_names,
         params, deps, pending, threads, resources) in rows:
        job = new(Job)
        job.rule = rules.get(rule)
        if job.rule is None:
            return None
        job.wildcards, job.id, job.outputs, job.output_names = wildcards, id_, outputs, output_names
        job.logs, job.log_names, job.benchmark = logs, log_names, benchmark
        job.inputs, job.input_names, job.params, job.threads, job.resources = inputs, input_names, params, threads, resources
        job.pending = set(pending) if pending is not None else None
        jobs.append(job)
        deps_of.append(deps)
    for job, deps in zip(jobs, deps_of, strict=True):
        job.deps = [jobs[i] for i in deps]
    return jobs

