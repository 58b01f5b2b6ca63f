"""The job graph, inferred from file names.

A target file is matched against the rules' output patterns (through
``PatternIndex``, so the cost does not grow with rules x files), the match
gives a job (rule + wildcards), the job's inputs are new files to match, and
so on down to source files. Checkpoint rules make the graph grow while it
runs: a job whose inputs glob inside a checkpoint's output waits for that
checkpoint (``Job.pending``) and is expanded by ``DAG.expand`` afterwards.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flow.grammar import FlowfileError
from flow.grammar.errors import did_you_mean

from ..errors import AmbiguousRuleError, CycleError, MissingInputError, UserError
from ..load.expressions import CheckpointPending
from ..load.index import PatternIndex
from ..load.model import Rule, Workflow, job_id
from ..load.patterns import PatternError
from .choice import RuleOrder, consumer_values
from .confine import Confinement
from .job import Job
from .job_values import job_params, late_inputs, late_params, set_threads_and_resources
from .suggest import close_files


class DAG:
    def __init__(self, workflow: Workflow):
        self.wf = workflow
        self.index = PatternIndex(workflow.rules.values(), workflow.constraints)
        self.guard = workflow.guard
        self.jobs: dict[str, Job] = {}
        self.producer: dict[str, Job | None] = {}
        self.failed: dict[str, UserError] = {}
        self.stack: list[Job] = []
        self.on_stack: dict[str, int] = {}  # rule name -> jobs of it on the stack
        self.stack_ids: set[str] = set()
        self.created: list[Job] = []
        self.confinement = Confinement(workflow.sources)
        self.order = RuleOrder(workflow.ruleorder)
        self._choosing: set[str] = set()  # paths whose candidate producers are being tried
        self._has_dirs = any("directory" in spec.flags for r in workflow.rules.values() for spec in r.outputs.specs)
        # What the graph was inferred from besides the definitions, for the
        # graph cache to check: whether each path looked at existed.
        self.probes: dict[str, bool] = {}

    # targets ------------------------------------------------------------------

    def targets(self, names: list[str]) -> list[Job]:
        """Jobs for the given files or rule names (the default target if none)."""
        if not names:
            if self.wf.default_target is None:
                return []  # a workflow without rules has nothing to do (as in Snakemake)
            names = [self.wf.default_target]
        return run_deep(lambda: [j for j in (self._target(n) for n in names) if j is not None])

    def _target(self, name: str) -> Job | None:
        rule = self.wf.rules.get(name)
        if rule is not None:
            if rule.wildcard_names:
                example = rule.outputs.specs[0].text
                raise UserError(
                    f"rule {name} has wildcards ({', '.join(rule.wildcard_names)}); it cannot be a target by name",
                    f"Name a file it makes instead, e.g. a path matching {example!r}.",
                )
            return self._job(rule, {})
        path = _normalize(name)
        job = self.resolve_file(path, None)
        if job is None and not self._exists(path):
            by_rule, by_file = did_you_mean(name, self.wf.rules), did_you_mean(path, close_files(path, self.wf.rules.values(), self.index), 0.8)
            looks_like_file = "/" in name or "." in name
            suggestion = (by_file or by_rule) if looks_like_file else (by_rule or by_file)
            raise MissingInputError(
                f"no rule makes {name}, and it does not exist" + (f". {suggestion}" if suggestion else ""),
                "A target is a file some rule's output matches, or a rule name. `flow list` shows the rules.",
                path=path,
            )
        return job

    # resolution ---------------------------------------------------------------

    def _exists(self, path: str) -> bool:
        exists = self.probes[path] = os.path.exists(path)
        return exists

    def resolve_file(self, path: str, requester: Job | None, rule_name: str | None = None) -> Job | None:
        """The job that makes ``path``, or None for a source file. ``rule_name``:
        the input was written as ``rules.NAME.output``, so only that rule makes it."""
        known = self.producer.get(path, False)
        if known is not False and (rule_name is None or (known is not None and known.rule.name == rule_name)):
            return known
        owner = self._known_directory_owner(path) if self._has_dirs and rule_name is None else None
        if owner is not None:  # inside a directory() output of a job of the graph: that job makes it
            self.producer[path] = owner
            return owner
        candidates = self._candidates(path, requester, rule_name)
        if not candidates:
            job = self._directory_producer(path) if rule_name is None else None
            if job is None and rule_name is not None and not self._exists(path):
                raise MissingInputError(
                    f"rule {requester.label} reads {path} as an output of rule {rule_name}, which cannot make it",
                    f"Check the rules.{rule_name} entry, or its wildcards.", path=path)
            self.producer.setdefault(path, job)
            return job
        producers, errors = self._try_producers(path, candidates)
        if not producers:
            if self._exists(path):
                self.producer.setdefault(path, None)
                return None
            raise errors[0]
        producer = producers[0]
        rival = next((p for p in producers[1:] if self.order.compare(p.rule, producer.rule) == 0), None)
        if rival is not None:
            raise AmbiguousRuleError(
                f"rules {producer.rule.name} and {rival.rule.name} can both make {path} "
                f"(as {producer.label} and {rival.label})",
                f"Add `ruleorder: {producer.rule.name} > {rival.rule.name}` (or the other way round), "
                "or narrow a pattern with wildcard_constraints:.",
            )
        if rule_name is None or path not in self.producer:
            self.producer[path] = producer
        return producer

    def _candidates(self, path: str, requester: Job | None, rule_name: str | None) -> list[tuple[Rule, dict]]:
        """The rules whose outputs match ``path``, one match each, highest
        ranked first, each with the wildcard values its job would take."""
        by_rule: dict[str, tuple[Rule, dict]] = {}
        for rule, wc in self.index.candidates(path):
            if rule_name is None or rule.name == rule_name:
                by_rule.setdefault(rule.name, (rule, wc))
        out = []
        for rule in self.order.highest_first([r for r, _ in by_rule.values()]):
            wc = by_rule[rule.name][1]
            theirs = requester.wildcards if requester is not None else None
            if theirs and any(theirs.get(n, v) != v for n, v in wc.items()):
                wc = consumer_values(rule, path, theirs, self.wf.constraints) or wc
            out.append((rule, wc))
        return out

    def _try_producers(self, path: str, candidates: list[tuple[Rule, dict]]) -> tuple[list[Job], list[UserError]]:
        """The jobs that can make ``path`` (their inputs exist or can be made),
        highest ranked first, stopping at one that ranks above all the rest;
        and why the others cannot."""
        producers: list[Job] = []
        errors: list[UserError] = []
        left = [rule for rule, _ in candidates]
        self._choosing.add(path)  # (two candidates that both make it: the caller says which wins)
        try:
            for rule, wc in candidates:
                try:
                    self._check_not_endless(rule, wc, path)
                    producers.append(self._job(rule, wc))
                except (MissingInputError, CycleError) as e:
                    errors.append(e)
                    left.remove(rule)
                    continue
                if self.order.strictly_highest(rule, left):
                    break
        finally:
            self._choosing.discard(path)
        return producers, errors

    def _check_not_endless(self, rule: Rule, wc: dict[str, str], path: str) -> None:
        """A rule applied again further down its own path is fine (a chain, a
        tree reduction) unless it would go on for ever, like `{x}` from `{x}.gz`:
        as in Snakemake, a wildcard value that repeats its end 20 times stops it."""
        if not self.on_stack.get(rule.name) or job_id(rule.name, wc) in self.stack_ids:
            return
        repeated = next(((k, u) for k, v in wc.items() if (u := _repeated_end(v))), None)
        if repeated:
            raise CycleError(
                f"rule {rule.name} would have to make {path} from its own output, "
                f"and so on for ever (wildcard {repeated[0]} repeats {repeated[1]!r})",
                "Provide the file, or narrow the rule's output with wildcard_constraints:.",
                pos=rule.where("output"),
            )

    def _known_directory_owner(self, path: str) -> Job | None:
        """The job of the graph whose directory() output holds ``path``, if any:
        a pattern such as ``split/{sample}`` must not make a new job of
        ``split/a/1.txt`` that ``split/a`` already holds."""
        for d in _parents(path):
            job = self._directory_owner(d)
            if job is not None:
                return self._holding(job, d, path)
        return None

    def _directory_producer(self, path: str) -> Job | None:
        """The job whose directory() output holds ``path``, made if need be."""
        for d in _parents(path):
            job = self._directory_owner(d) or next(
                (self._job(rule, wc) for rule, wc in self.index.candidates(d, dirs_only=True)), None)
            if job is not None:
                return self._holding(job, d, path)
        return None

    def _directory_owner(self, d: str) -> Job | None:
        """The job of the graph that makes ``d`` as a directory() output."""
        job = self.producer.get(d)
        if job is not None and any("directory" in job.output_flags(i) for i, o in enumerate(job.outputs) if o == d):
            return job
        return None

    @staticmethod
    def _holding(job: Job, d: str, path: str) -> Job:
        """``job``, which makes ``path`` inside its directory ``d``, unless
        ``d`` is temp(): flow deletes it whole, so nothing in it is an input."""
        if any("temp" in job.output_flags(i) for i, o in enumerate(job.outputs) if o == d):
            raise UserError(
                f"{path} lies inside {d}, a temp(directory()) output of rule {job.rule.name}: "
                "flow deletes it whole, so a file in it cannot be an input",
                f"Read the directory {d} itself as the input, or drop temp().",
                pos=job.rule.where("output"))
        return job

    def _job(self, rule: Rule, wildcards: dict[str, str]) -> Job:
        key = job_id(rule.name, wildcards)
        job = self.jobs.get(key)
        if job is not None:
            return job
        if key in self.failed:
            raise self.failed[key]
        for i, j in enumerate(self.stack if key in self.stack_ids else ()):  # (a set first: chains are deep)
            if j.id == key:
                chain = " -> ".join(f"{x.label} [{', '.join(x.outputs)}]" for x in self.stack[i:]) + f" -> {j.label}"
                raise CycleError(f"cycle in the workflow: {chain}",
                                 "A job needs, through its inputs, a file it makes itself.")
        job = Job(rule, wildcards, key)
        self.confinement.check(job)
        self.stack.append(job)
        self.on_stack[rule.name] = self.on_stack.get(rule.name, 0) + 1
        self.stack_ids.add(key)
        try:
            self._resolve_inputs(job)
        except MissingInputError as e:
            self.failed[key] = e
            raise
        finally:
            self.stack.pop()
            self.on_stack[rule.name] -= 1
            self.stack_ids.discard(key)
        self.jobs[key] = job
        self.created.append(job)
        for out in job.outputs + job.logs:
            other = self.producer.setdefault(out, job)
            if other is not job and other is not None and out not in self._choosing \
                    and out in other.outputs + other.logs:
                raise AmbiguousRuleError(
                    f"{other.label} and {job.label} would both write {out}",
                    "Two jobs cannot make the same file: give one of the outputs another name "
                    "(its wildcards too), or narrow a pattern with wildcard_constraints:.",
                    pos=job.rule.where("output"),
                )
        return job

    def _resolve_inputs(self, job: Job) -> None:
        rule = job.rule
        try:
            inputs = rule.inputs if rule.inputs is not None else late_inputs(rule, job, self.wf.env)
            params = rule.params if rule.params is not None else late_params(rule, self.wf.env)
        except CheckpointPending as p:
            job.pending = set(p.paths)
            job.deps = _unique(self._checkpoint_job(path, job) for path in sorted(p.paths))
            return
        job.pending = None
        try:
            job.inputs, job.input_names = inputs.format(job.wildcards)
        except PatternError as e:
            raise FlowfileError.at(rule.where("input"), f"rule {rule.name}: input uses unknown wildcard {e}") from None
        job.inputs = [_normalize(p) for p in job.inputs]
        job.params = job_params(job, params)
        if rule.per_job_numbers:
            set_threads_and_resources(job)
        deps = []
        ties = rule.input_ties
        for i, path in enumerate(job.inputs):
            dep = self.resolve_file(path, job, ties.get(i)) if ties else self.resolve_file(path, job)
            if dep is None:
                if not self._exists(path):
                    raise MissingInputError(
                        f"rule {job.label} needs {path}, which does not exist, and no rule makes it",
                        "Check the path, or add a rule whose output matches it.",
                        pos=rule.where("input"), path=path,
                    )
            else:
                deps.append(dep)
        job.deps = _unique(deps)

    def _checkpoint_job(self, path: str, requester: Job) -> Job:
        for rule, wc in self.guard.index.candidates(path):
            return self._job(rule, wc)
        raise UserError(f"no checkpoint makes {path}")  # pragma: no cover - the guard found one

    # checkpoints ----------------------------------------------------------------

    def checkpoint_done(self, job: Job) -> None:
        self.guard.completed.add(job.id)

    def expand(self, job: Job) -> list[Job]:
        """Evaluate a pending job's inputs again; returns the jobs this created."""
        self.created = []
        run_deep(lambda: self._resolve_inputs(job))
        return self.created

    # views --------------------------------------------------------------------

    def reachable(self, targets: list[Job]) -> list[Job]:
        """Every job the targets need, dependencies before dependants."""
        order: list[Job] = []
        seen: set[int] = set()
        for t in targets:
            if id(t) in seen:
                continue
            stack: list[tuple[Job, int]] = [(t, 0)]
            seen.add(id(t))
            while stack:
                job, i = stack.pop()
                if i < len(job.deps):
                    stack.append((job, i + 1))
                    dep = job.deps[i]
                    if id(dep) not in seen:
                        seen.add(id(dep))
                        stack.append((dep, 0))
                else:
                    order.append(job)
        return order


def _parents(path: str) -> Iterator[str]:
    """The directories above ``path``, nearest first."""
    d = os.path.dirname(path)
    while d and d != os.path.dirname(d):
        yield d
        d = os.path.dirname(d)


def _repeated_end(value: str, times: int = 20, longest: int = 100) -> str | None:
    """The piece a wildcard value ends with ``times`` times over, if any."""
    for size in range(1, min(longest, len(value) // times) + 1):
        unit = value[-size:]
        if value.endswith(unit * times):
            return unit
    return None


def _unique(jobs: Iterable[Job]) -> list[Job]:
    seen: dict[int, Job] = {}
    for j in jobs:
        seen.setdefault(id(j), j)
    return list(seen.values())


def _normalize(path: str) -> str:
    if not path or not ("/." in path or "//" in path or path.startswith(".") or path.endswith("/")):
        return path  # already normal (most paths): normpath would return it as it is
    return os.path.normpath(path)


def run_deep(fn: Callable[[], Any]) -> Any:
    """Run a recursive resolution in a thread with a large stack, so that a
    chain of 100,000 jobs does not hit Python's recursion limit."""
    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as e:  # handed to the caller's thread
            error.append(e)

    if threading.current_thread().name == "flow-deep":
        return fn()
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 1_000_000))
    old_size = threading.stack_size()
    threading.stack_size(1024 * 1024 * 1024)
    try:
        t = threading.Thread(target=target, name="flow-deep", daemon=True)
        t.start()
    finally:
        threading.stack_size(old_size)
    t.join()
    sys.setrecursionlimit(old_limit)
    if error:
        raise error[0]
    return result[0]


__all__ = ["DAG", "Job"]
