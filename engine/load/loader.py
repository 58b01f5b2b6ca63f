"""Reading a Flowfile into a ``Workflow``.

``load`` parses the Flowfile (and its includes and config files), evaluates
top-level assignments and every rule directive that can be evaluated now, and
checks what can be checked without files: wildcards of inputs against outputs,
one set of wildcards per rule, ruleorder names, the default target. Inputs
and params that glob inside a checkpoint's output are kept as expressions for
the job graph to evaluate once the checkpoint has run.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from typing import Any

from flow.grammar import FlowfileError, ast
from flow.grammar.errors import did_you_mean
from flow.rules import ACTION_KINDS, Action, ActionError, action_class, contracts

from ..errors import UserError
from .config import merge, read_config_file
from .evaluate import (
    PerJob,
    check_all_wildcards,
    check_wildcards,
    evaluate_at,
    param_patterns,
    params_from,
    path_pattern,
    paths_from,
)
from .expressions import CheckpointPending, Deferred, Env, Function, Unpack
from .index import CheckpointGuard
from .model import PathList, Rule, Workflow
from .patterns import Pattern
from .references import CheckpointRefs, RuleRefs
from .resources import ResourceError, normalized

FLOWFILE_NAMES = ("Flowfile", "workflow/Flowfile", "Snakefile", "workflow/Snakefile")


def find_flowfile(explicit: str | None) -> str:
    """The Flowfile named with -f, or the first of ``FLOWFILE_NAMES`` here."""
    if explicit:
        if not os.path.isfile(explicit):
            raise UserError(f"no Flowfile at {explicit}")
        return explicit
    for name in FLOWFILE_NAMES:
        if os.path.isfile(name):
            return name
    raise UserError(
        f"no Flowfile in {os.getcwd()}",
        "Create a file named Flowfile (or Snakefile), or name one with -f PATH, "
        "or change directory with -C DIR.",
    )


def load(flowfile: str, overrides: dict[str, Any] | None = None,
         parse_file: Callable[[str], ast.Module] | None = None) -> Workflow:
    """The workflow of ``flowfile``, with ``--config`` ``overrides`` applied;
    each file parsed by ``parse_file`` (``flow.grammar``'s, or a
    ``parsed.ParseCache``'s)."""
    return _Loader(overrides or {}, parse_file or _parse_file).load(flowfile)


def _parse_file(path: str) -> ast.Module:
    from flow.grammar import parse_file

    return parse_file(path)


class _Loader:
    def __init__(self, overrides: dict[str, Any], parse_file: Callable[[str], ast.Module]):
        self.parse_file = parse_file
        self.overrides = overrides
        self.config: dict = copy.deepcopy(overrides)
        self.constraints: dict[str, str] = {}
        self.guard = CheckpointGuard(self.constraints)
        self.rules: dict[str, Rule] = {}
        self.env = Env(names={"config": self.config, "rules": RuleRefs(self.rules),
                              "checkpoints": CheckpointRefs(self.rules, self.guard)}, guard=self.guard)
        self.assignments: list[ast.Assign] = []
        self.ruleorder: list[tuple[str, ...]] = []
        self.ruleorder_pos: list[ast.Pos] = []
        self.localrules: set[str] = set()
        self.nocache: list[ast.Name] = []  # rules that nocache: names (checked once all are known)
        self.default_target: str | None = None
        self.first_rule: str | None = None
        self.first_any: str | None = None
        self.sources: list[str] = []
        self.including: list[str] = []
        self.workdir = os.getcwd()

    def load(self, flowfile: str) -> Workflow:
        path = os.path.abspath(flowfile)
        self._file(path)
        if self.guard.rules:
            # Now that every checkpoint is known, globs inside their outputs
            # must wait, whatever the order of the file.
            for stmt in self.assignments:
                self._assign(stmt)
        for rule in self.rules.values():
            self._inputs_and_params(rule)
        for order, pos in zip(self.ruleorder, self.ruleorder_pos, strict=True):
            for name in order:
                if name not in self.rules:
                    suggestion = did_you_mean(name, self.rules)
                    raise FlowfileError.at(pos, f"ruleorder names `{name}`, but there is no rule of that name"
                                           + (f". {suggestion}" if suggestion else ""), "`flow list` shows the rules.")
        self._uncache()
        target = self.default_target or self.first_rule or self.first_any
        return Workflow(path, self.rules, self.ruleorder, self.constraints, self.localrules,
                        self.config, self.env, target, self.workdir, self.sources, self.guard)

    def _file(self, path: str) -> None:
        self.sources.append(path)
        self.including.append(path)
        module = self.parse_file(path)
        for stmt in module.statements:
            self._statement(stmt, path)
        self.including.pop()

    def _statement(self, stmt: ast.Statement, path: str) -> None:
        if isinstance(stmt, ast.Assign):
            if stmt.name == "config":
                raise FlowfileError.at(stmt.pos, "`config` cannot be reassigned", "Use configfile: or --config.")
            self.assignments.append(stmt)
            self._assign(stmt)
        elif isinstance(stmt, ast.RuleOrder):
            self.ruleorder.append(stmt.names)
            self.ruleorder_pos.append(stmt.pos)
        elif isinstance(stmt, ast.Rule):
            self._rule(stmt)
        elif isinstance(stmt, ast.Directive):
            getattr(self, f"_top_{stmt.name}")(stmt, path)

    def _assign(self, stmt: ast.Assign) -> None:
        try:
            self.env.names[stmt.name] = self._eval(stmt.value)
        except CheckpointPending:
            self.env.names[stmt.name] = Deferred(stmt.value)

    def _inputs_and_params(self, rule: Rule) -> None:
        """Evaluate input: and params: unless they wait for a checkpoint
        (then the DAG evaluates them once it has run)."""
        label = f"rule {rule.name}"
        if rule.input_expr is None:
            rule.inputs = PathList([], {})
        else:
            d = ast.Directive("input", rule.input_expr, rule.where("input"))
            try:
                rule.inputs = paths_from(d, self.env, label)
                rule.input_expr = None
            except (CheckpointPending, PerJob):
                pass  # the graph evaluates it for each job
            else:
                check_wildcards("input", rule.inputs.patterns, rule.wildcard_names, d.pos, label)
        if rule.params_expr is None:
            rule.params = {}
        else:
            try:
                rule.params = params_from(rule.params_expr, self.env)
            except CheckpointPending:
                pass
            else:
                if any(isinstance(v, Unpack) for v in rule.params.values()):
                    raise FlowfileError.at(rule.where("params"), f"unpack() in params: of {label}",
                                           "unpack() makes named inputs; a params function may return a dict as it is.")
                check_wildcards("params", param_patterns(rule.params), rule.wildcard_names,
                                rule.where("params"), label)
                rule.params_expr = None

    def _eval(self, expr: ast.Expr) -> Any:
        return evaluate_at(expr, self.env)

    def _single(self, d: ast.Directive, kind: type | tuple[type, ...], what: str) -> Any:
        if len(d.value.positional) != 1 or d.value.named:
            raise FlowfileError.at(d.pos, f"`{d.name}:` takes one {what}")
        value = self._eval(d.value.positional[0])
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise FlowfileError.at(d.value.positional[0].pos,
                                   f"`{d.name}:` takes {what}, not {type(value).__name__}")
        return value

    # top-level directives --------------------------------------------------

    def _top_configfile(self, d: ast.Directive, path: str) -> None:
        name = self._single(d, str, "path (a string)")
        merge(self.config, read_config_file(name, d.pos))
        merge(self.config, copy.deepcopy(self.overrides))
        self.sources.append(os.path.abspath(name))

    def _top_include(self, d: ast.Directive, path: str) -> None:
        name = self._single(d, str, "path (a string)")
        target = os.path.normpath(os.path.join(os.path.dirname(path), name))
        if not os.path.isfile(target):
            raise FlowfileError.at(d.pos, f"included file {name} does not exist (looked for {target})")
        if target in self.including:
            raise FlowfileError.at(d.pos, f"{name} includes itself (through {' -> '.join(self.including)})")
        self._file(target)

    def _top_workdir(self, d: ast.Directive, path: str) -> None:
        name = self._single(d, str, "directory (a string)")
        try:
            os.makedirs(name, exist_ok=True)
            os.chdir(name)
        except OSError as e:
            raise FlowfileError.at(d.pos, f"cannot use workdir {name}: {e.strerror}") from None
        self.workdir = os.getcwd()

    def _top_wildcard_constraints(self, d: ast.Directive, path: str) -> None:
        self.constraints.update(self._constraints(d))

    def _top_localrules(self, d: ast.Directive, path: str) -> None:
        for e in d.value.positional:
            if not isinstance(e, ast.Name):
                raise FlowfileError.at(e.pos, "localrules: takes rule names")
            self.localrules.add(e.id)

    def _top_nocache(self, d: ast.Directive, path: str) -> None:
        for e in d.value.positional:
            if not isinstance(e, ast.Name):
                raise FlowfileError.at(e.pos, "nocache: takes rule names", "Write nocache: rule_a, rule_b.")
            self.nocache.append(e)

    def _uncache(self) -> None:
        """The rules ``nocache:`` names keep their results out of a shared cache."""
        for e in self.nocache:
            if e.id not in self.rules:
                suggestion = did_you_mean(e.id, self.rules)
                raise FlowfileError.at(e.pos, f"nocache: names `{e.id}`, but there is no rule of that name"
                                       + (f". {suggestion}" if suggestion else ""), "`flow list` shows the rules.")
            self.rules[e.id].cache = False

    def _cached(self, ds: dict[str, ast.Directive]) -> bool:
        """A rule's ``cache:``: True or False, or Snakemake's "omit-software" and "all" (both True here)."""
        if "cache" not in ds:
            return True
        value = self._single(ds["cache"], (bool, str), 'True, False or "omit-software"')
        if isinstance(value, str) and value not in ("omit-software", "all"):
            raise FlowfileError.at(ds["cache"].pos, f"cache: {value!r} is not True, False or \"omit-software\"",
                                   "cache: False keeps the rule's results out of a shared cache (--cache).")
        return value is not False

    def _constraints(self, d: ast.Directive) -> dict[str, str]:
        if d.value.positional:
            raise FlowfileError.at(d.pos, "wildcard_constraints: takes name=\"regex\" entries")
        out = {}
        for kw in d.value.named:
            value = self._eval(kw.value)
            if not isinstance(value, str):
                raise FlowfileError.at(kw.value.pos, "a wildcard constraint is a regex string")
            out[kw.name] = value
        return out

    # rules ------------------------------------------------------------------

    def _rule(self, r: ast.Rule) -> None:
        name = r.name or f"rule{len(self.rules) + 1}"
        if name in self.rules:
            raise FlowfileError.at(r.pos, f"rule `{name}` is defined twice (first at {self.rules[name].pos})")
        ds = {d.name: d for d in r.directives}
        label = f"rule {name}"
        _check_action_is_last(r, label)
        outputs, wildcard_names = self._outputs(ds.get("output"), label)
        logs = paths_from(ds["log"], self.env, label) if "log" in ds else PathList([], {})
        if "log" in ds:
            check_wildcards("log", logs.patterns, wildcard_names, ds["log"].pos, label)
            check_all_wildcards("log", logs.patterns, wildcard_names, ds["log"].pos, label)
        action = self._action(r, ds, label) or _touch_only(r, outputs)
        _check_action_outputs(action, outputs, ds.get(action.kind, r) if action else r, label)
        rule = Rule(
            name=name, checkpoint=r.checkpoint, pos=r.pos, outputs=outputs,
            wildcard_names=wildcard_names,
            constraints=self._constraints(ds["wildcard_constraints"]) if "wildcard_constraints" in ds else {},
            input_expr=ds["input"].value if "input" in ds else None, inputs=None,
            params_expr=ds["params"].value if "params" in ds else None, params=None, logs=logs,
            benchmark=self._benchmark(ds.get("benchmark"), wildcard_names, label),
            message=self._single(ds["message"], str, "string") if "message" in ds else None,
            resources=self._resources(ds.get("resources")),
            action=action, schema=self._schema(ds["schema"], outputs, label) if "schema" in ds else None,
            default_target=self._flag(ds, "default_target"),
            directive_pos={d.name: d.pos for d in r.directives},
            cache=self._cached(ds),
            **self._numbers(ds),
        )
        self._add(rule, self._flag(ds, "localrule"))

    def _add(self, rule: Rule, local: bool) -> None:
        self.rules[rule.name] = rule
        if rule.checkpoint:
            self.guard.add(rule)
        # As in Snakemake, rules of included files are not the default target
        # (unless the main file has no rule at all).
        if self.first_rule is None and len(self.including) == 1:
            self.first_rule = rule.name
        self.first_any = self.first_any or rule.name
        if rule.default_target:
            self.default_target = rule.name
        if local:
            self.localrules.add(rule.name)

    def _outputs(self, d: ast.Directive | None, label: str) -> tuple[PathList, tuple[str, ...]]:
        """The rule's outputs and their wildcards, the same in every output."""
        if d is None:
            return PathList([], {}), ()
        outputs = paths_from(d, self.env, label)
        texts = [s.text for s in outputs.specs]
        twice = next((t for i, t in enumerate(texts) if t in texts[:i]), None)
        if twice is not None:
            raise FlowfileError.at(d.pos, f"output {twice!r} of {label} is written twice",
                                   "Name each output once.")
        wildcard_names: tuple[str, ...] = outputs.specs[0].pattern.names if outputs.specs else ()
        for spec in outputs.specs[1:]:
            names = set(spec.pattern.names)
            if names != set(wildcard_names):
                raise FlowfileError.at(
                    d.pos,
                    f"outputs of {label} have different wildcards: {outputs.specs[0].text!r} "
                    f"has {{{', '.join(wildcard_names) or 'none'}}}, {spec.text!r} has {{{', '.join(sorted(names)) or 'none'}}}",
                    "Every output of a rule must carry the same wildcards.",
                )
        return outputs, wildcard_names

    def _benchmark(self, d: ast.Directive | None, wildcard_names: tuple[str, ...], label: str) -> Pattern | None:
        if d is None:
            return None
        pattern = path_pattern(self._single(d, str, "path (a string)"), d.value.positional[0], "benchmark", label)
        check_wildcards("benchmark", [pattern], wildcard_names, d.pos, label)
        check_all_wildcards("benchmark", [pattern], wildcard_names, d.pos, label)
        return pattern

    def _numbers(self, ds: dict[str, ast.Directive]) -> dict[str, Any]:
        """threads:, retries: and priority:, checked for their range."""
        threads = self._single(ds["threads"], (int, Function), "whole number") if "threads" in ds else 1
        retries = self._single(ds["retries"], int, "whole number") if "retries" in ds else 0
        priority = self._single(ds["priority"], (int, float), "number") if "priority" in ds else 0
        if isinstance(threads, int) and threads < 0:
            raise FlowfileError.at(ds["threads"].pos, "threads: cannot be negative")
        if retries < 0:
            raise FlowfileError.at(ds["retries"].pos, "retries: cannot be negative")
        return {"threads": threads, "retries": retries, "priority": priority}

    def _resources(self, d: ast.Directive | None) -> dict[str, float | str]:
        if d is None:
            return {}
        if d.value.positional:
            raise FlowfileError.at(d.pos, "resources: takes name=number entries")
        resources = {}
        for kw in d.value.named:
            v = self._eval(kw.value)
            if isinstance(v, Function):  # called for each job
                resources[kw.name] = v
                continue
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if (number and not 0 <= v < math.inf) or not (number or isinstance(v, str)):
                raise FlowfileError.at(kw.value.pos, f"resource {kw.name} must be a non-negative number or a string")
            resources[kw.name] = v
        try:
            return normalized(resources)
        except ResourceError as e:
            raise FlowfileError.at(d.pos, f"resources: {e}") from None

    def _flag(self, ds: dict[str, ast.Directive], name: str) -> bool:
        return bool(self._single(ds[name], bool, "True or False")) if name in ds else False

    def _schema(self, d: ast.Directive, outputs: PathList, label: str) -> dict[str, str]:
        try:
            schema = contracts.parse_schema(self._single(d, dict, "dict of column: type"))
        except contracts.SchemaError as e:
            raise FlowfileError.at(d.pos, f"{label}: {e}") from None
        files = [s.text for s in outputs.specs if "directory" not in s.flags]
        if not any(contracts.checkable(t) or t.endswith("}") for t in files):
            raise FlowfileError.at(
                d.pos, f"{label} has a schema: but no output flow can check it on",
                "schema: is checked on .parquet, .csv, .tsv, .json, .ndjson and .jsonl outputs.")
        return schema

    def _action(self, r: ast.Rule, ds: dict[str, ast.Directive], label: str) -> Action | None:
        """The rule's action, made by its kind's class (``flow.rules``) from what is written."""
        written = self._action_text(r, ds)
        if written is None:
            return None
        kind, text, pos = written
        try:
            return action_class(kind).from_directive(text, pos.file, pos.line)
        except ActionError as e:
            raise FlowfileError.at(pos, str(e)) from None

    def _action_text(self, r: ast.Rule, ds: dict[str, ast.Directive]) -> tuple[str, str, ast.Pos] | None:
        """The rule's action kind, its text and where it is written: a run:
        block's source as it is (it runs only in a job), any other action
        directive's value evaluated now (the grammar allows one action a rule)."""
        if r.run is not None:
            return "run", r.run.code, r.run.pos
        for kind in ACTION_KINDS:
            d = ds.get(kind)
            if d is not None:
                return kind, self._single(d, str, action_class(kind).takes), d.pos
        return None


def _check_action_is_last(r: ast.Rule, label: str) -> None:
    """As in Snakemake, the action (shell:, run:, ...) ends a rule: a
    directive written after it is refused, not silently taken."""
    kinds = set(ACTION_KINDS)
    action = r.run.pos if r.run is not None else next((d.pos for d in r.directives if d.name in kinds), None)
    if action is None:
        return
    late = next((d for d in r.directives if d.name not in kinds and (d.pos.line, d.pos.column) > (action.line, action.column)), None)
    if late is not None:
        raise FlowfileError.at(late.pos, f"`{late.name}:` comes after the action of {label}",
                               "Write the action (shell:, run:, script:, ...) last in the rule, as Snakemake requires.")


def _touch_only(r: ast.Rule, outputs: PathList) -> Action | None:
    """A rule without action whose outputs include touch() files runs as a
    job that does nothing but make them (as in Snakemake): a no-op command."""
    if not any("touch" in spec.flags for spec in outputs.specs):
        return None
    return action_class("shell").from_directive(":", r.pos.file, r.pos.line)


def _check_action_outputs(action: Action | None, outputs: PathList,
                          where: ast.Directive | ast.Rule, label: str) -> None:
    if action is None:
        return
    try:
        action.check_outputs([(spec.text, spec.flags) for spec in outputs.specs])
    except ActionError as e:
        raise FlowfileError.at(where.pos, f"{label}: {e}") from None
