"""What a job's rule leaves to be evaluated for each job: inputs that call
input functions or waited for a checkpoint, params that did, and
``threads:``/``resources:`` functions. Each is called with the job's
wildcards (and, as in Snakemake, its inputs, outputs, threads and resources
where a function asks for them by name)."""

from __future__ import annotations

from typing import Any

from flow.grammar import FlowfileError, ast
from flow.rules import Namespace

from ..load.evaluate import (
    called_params,
    check_wildcards,
    job_caller,
    param_patterns,
    params_from,
    paths_from,
)
from ..load.expressions import Env, Function
from ..load.model import PathList, Rule
from ..load.resources import ResourceError, normalized
from .job import Job


def late_inputs(rule: Rule, job: Job, env: Env) -> PathList:
    """The inputs of one job of a rule whose input: calls input functions,
    or globbed inside a checkpoint's output that has now been made."""
    label, pos = f"rule {rule.name}", rule.where("input")
    call = job_caller(f"rule {job.label}", job.wildcards)
    inputs = paths_from(ast.Directive("input", rule.input_expr, pos), env, label, call)
    check_wildcards("input", inputs.patterns, rule.wildcard_names, pos, label)
    return inputs


def late_params(rule: Rule, env: Env) -> dict[str, Any]:
    """Params that waited for a checkpoint, evaluated now that it has run."""
    params = params_from(rule.params_expr, env)
    check_wildcards("params", param_patterns(params), rule.wildcard_names, rule.where("params"), f"rule {rule.name}")
    return params


def job_params(job: Job, params: dict[str, Any]) -> dict[str, Any]:
    """The job's params, with their functions called."""
    if not any(isinstance(v, Function) for v in params.values()):
        return params
    call = job_caller(f"rule {job.label}", job.wildcards, "params", input=job.named("input"),
                      output=job.named("output"), threads=job.threads, resources=Namespace(job.resources))
    return called_params(params, call)


def set_threads_and_resources(job: Job, attempt: int = 1) -> None:
    """Call a rule's threads: and resources: functions for the job, with its
    wildcards, inputs and ``attempt`` (1, then one more for each retry, as
    Snakemake calls them: a retry may ask for more memory)."""
    rule = job.rule
    def caller(what: str):
        return job_caller(f"rule {job.label}", job.wildcards, what, input=job.named("input"), attempt=attempt)

    if isinstance(rule.threads, Function):
        job.threads = _whole(caller("threads")(rule.threads), f"threads: of rule {job.label}", rule.where("threads"))
    if any(isinstance(v, Function) for v in rule.resources.values()):
        call = caller("resources")
        values = {k: call(v) if isinstance(v, Function) else v for k, v in rule.resources.items()}
        try:
            job.resources = normalized(values)
        except ResourceError as e:
            raise FlowfileError.at(rule.where("resources"), f"resources of rule {job.label}: {e}") from None
        for k, v in job.resources.items():
            if not isinstance(v, (int, float, str)) or (not isinstance(v, str) and v < 0):
                raise FlowfileError.at(rule.where("resources"), f"resource {k} of rule {job.label} is {v!r}",
                                       "A resource is a non-negative number or a string.")


def _whole(value: Any, what: str, pos: ast.Pos) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FlowfileError.at(pos, f"{what} is {value!r}, not a whole number", "threads: is a whole number (0 or more).")
    return value
