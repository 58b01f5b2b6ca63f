"""The workflow model: a Flowfile's AST, evaluated into rules with patterns.

``load`` reads the Flowfile (and its includes and config files), evaluates
top-level assignments and every rule directive that can be evaluated now, and
checks what can be checked without files: wildcards of inputs against outputs,
one set of wildcards per rule, ruleorder names, the default target.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flow.grammar import FlowfileError, ast, parse_file
from flow.rules import (
    ACTION_KINDS,
    Action,
    ActionError,
    NamedList,
    Namespace,
    action_class,
    contracts,
)

from ..errors import UserError
from .expressions import CheckpointPending, Deferred, Env, EvalError, FlaggedPath, evaluate
from .index import CheckpointGuard
from .patterns import Pattern, PatternError, parse_pattern

FLOWFILE_NAMES = ("Flowfile", "workflow/Flowfile", "Snakefile", "workflow/Snakefile")


@dataclass(frozen=True)
class PathSpec:
    """One input/output/log entry: a pattern with flags."""

    pattern: Pattern
    flags: frozenset[str]

    @property
    def text(self) -> str:
        return self.pattern.text


@dataclass
class PathList:
    """Entries of input:, output: or log:, with names for named entries."""

    specs: list[PathSpec]
    names: dict[str, int | tuple[int, int]]

    def format(self, wildcards: dict[str, str]) -> tuple[list[str], dict]:
        return [s.pattern.format(wildcards) for s in self.specs], self.names


@dataclass
class Rule:
    name: str
    checkpoint: bool
    pos: ast.Pos
    outputs: PathList
    wildcard_names: tuple[str, ...]
    constraints: dict[str, str]
    input_expr: ast.Arguments | None  # kept when inputs wait for a checkpoint
    inputs: PathList | None
    params_expr: ast.Arguments | None
    params: dict[str, Any] | None
    logs: PathList
    benchmark: Pattern | None
    message: str | None
    threads: int
    resources: dict[str, int]
    retries: int
    priority: int
    action: Any  # a flow.rules action, or None for a rule that only gathers
    schema: dict[str, str] | None
    default_target: bool
    directive_pos: dict[str, ast.Pos] = field(default_factory=dict)

    def where(self, directive: str | None = None) -> ast.Pos:
        return self.directive_pos.get(directive, self.pos) if directive else self.pos

    @functools.cached_property
    def ancient_inputs(self) -> bool:
        """Whether any input is ancient() (most rules have none: their jobs skip the check)."""
        return self.inputs is None or any("ancient" in s.flags for s in self.inputs.specs)

    @functools.cached_property
    def makes_temp(self) -> bool:
        """Whether flow makes temp() files for its jobs (never for a rule without action)."""
        return self.action is not None and any("temp" in s.flags for s in self.outputs.specs)


@dataclass
class Workflow:
    flowfile: str
    rules: dict[str, Rule]
    ruleorder: list[tuple[str, ...]]
    constraints: dict[str, str]
    localrules: set[str]
    config: dict
    env: Env
    default_target: str | None
    workdir: str
    sources: list[str]  # the Flowfile, its includes and config files
    guard: CheckpointGuard


def find_flowfile(explicit: str | None) -> str:
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


def parse_config_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--config {item!r}: expected KEY=VALUE")
        try:
            out[key] = _yaml().safe_load(value) if value else ""
        except Exception:  # noqa: BLE001 - not YAML (e.g. 2024-13-45): the text as it is
            out[key] = value
        problem = config_problem(out[key])
        if problem:
            raise UserError(f"--config {key}: {problem}")
    return out


MAX_CONFIG_VALUES = 1_000_000


def config_problem(data: Any) -> str | None:
    """Why a config value cannot be used: YAML aliases can make it refer to
    itself, or (a "billion laughs") stand for more values than memory holds."""
    count, stack = 0, [data]
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            return (f"it holds more than {MAX_CONFIG_VALUES:,} values, or refers to itself "
                    "through YAML aliases (&name / *name)")
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set)):
            stack.extend(value)
    return None


def load(flowfile: str, overrides: dict[str, Any] | None = None) -> Workflow:
    return _Loader(overrides or {}).load(flowfile)


class _Loader:
    def __init__(self, overrides: dict[str, Any]):
        self.overrides = overrides
        self.config: dict = copy.deepcopy(overrides)
        self.constraints: dict[str, str] = {}
        self.guard = CheckpointGuard(self.constraints)
        self.env = Env(names={"config": self.config}, guard=self.guard)
        self.assignments: list[ast.Assign] = []
        self.rules: dict[str, Rule] = {}
        self.ruleorder: list[tuple[str, ...]] = []
        self.ruleorder_pos: list[ast.Pos] = []
        self.localrules: set[str] = set()
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
                    raise FlowfileError.at(pos, f"ruleorder names `{name}`, but there is no rule of that name",
                                           "`flow list` shows the rules.")
        target = self.default_target or self.first_rule or self.first_any
        return Workflow(path, self.rules, self.ruleorder, self.constraints, self.localrules,
                        self.config, self.env, target, self.workdir, self.sources, self.guard)

    def _file(self, path: str) -> None:
        self.sources.append(path)
        self.including.append(path)
        module = parse_file(path)
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
                rule.inputs = self._paths(d, label)
                rule.input_expr = None
            except CheckpointPending:
                pass
            else:
                self._check_wildcards("input", rule.inputs, d, rule.wildcard_names, label)
        if rule.params_expr is None:
            rule.params = {}
        else:
            try:
                rule.params = self._params(rule.params_expr)
            except CheckpointPending:
                pass
            else:
                self._check_param_wildcards(rule, label)
                rule.params_expr = None

    def _check_param_wildcards(self, rule: Rule, label: str) -> None:
        """Params strings are formatted with the job's wildcards (as in
        Snakemake); one naming a wildcard the output lacks is a mistake."""
        def strings(value: Any):
            if isinstance(value, str):
                yield value
            elif isinstance(value, (list, tuple)):
                for v in value:
                    yield from strings(v)

        for value in rule.params.values():
            for text in strings(value):
                try:
                    names = parse_pattern(text).names
                except PatternError:
                    continue  # not a pattern (e.g. code in braces): used as written
                extra = [n for n in names if n not in rule.wildcard_names]
                if extra:
                    raise FlowfileError.at(
                        rule.where("params"),
                        f"params {text!r} of {label} uses wildcard {{{extra[0]}}}, which its output does not have",
                        "Params strings are filled with the job's wildcards; write {{ and }} for literal braces.",
                    )

    def _check_wildcards(self, what: str, plist: PathList, d: ast.Directive | None,
                         wildcard_names: tuple[str, ...], label: str) -> None:
        for spec in plist.specs:
            extra = [n for n in spec.pattern.names if n not in wildcard_names]
            if extra:
                raise FlowfileError.at(
                    d.pos,
                    f"{what} {spec.text!r} of {label} uses wildcard {{{extra[0]}}}, "
                    f"which its output does not have",
                    "Wildcards in inputs and logs are filled from the output; "
                    "use {{" + extra[0] + "}} in expand() to keep it, or add it to the output.",
                )

    def _eval(self, expr: ast.Expr) -> Any:
        try:
            return evaluate(expr, self.env)
        except EvalError as e:
            raise FlowfileError.at(e.pos, e.message, e.hint) from None

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
        try:
            with open(name, encoding="utf-8") as f:
                data = json.load(f) if name.endswith(".json") else _yaml().safe_load(f)
        except FileNotFoundError:
            raise FlowfileError.at(d.pos, f"config file {name} does not exist",
                                   f"Create it, or remove the configfile: line (looked in {os.getcwd()}).") from None
        except UnicodeDecodeError as e:
            raise FlowfileError.at(d.pos, f"config file {name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
        except OSError as e:
            raise FlowfileError.at(d.pos, f"cannot read config file {name}: {e.strerror}") from None
        except Exception as e:  # noqa: BLE001 - YAML's and JSON's errors, and their converters' (dates, tags)
            raise FlowfileError.at(d.pos, f"cannot read config file {name}: {e}") from None
        if data is None:
            data = {}
        problem = config_problem(data)
        if problem:
            raise FlowfileError.at(d.pos, f"config file {name}: {problem}")
        if not isinstance(data, dict):
            raise FlowfileError.at(d.pos, f"config file {name} must hold a mapping, not {type(data).__name__}")
        _merge(self.config, data)
        _merge(self.config, copy.deepcopy(self.overrides))
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
        out_d = ds.get("output")
        outputs = self._paths(out_d, label) if out_d else PathList([], {})
        wildcard_names: tuple[str, ...] = ()
        for i, spec in enumerate(outputs.specs):
            names = set(spec.pattern.names)
            if i == 0:
                wildcard_names = spec.pattern.names
            elif names != set(wildcard_names):
                raise FlowfileError.at(
                    out_d.pos,
                    f"outputs of {label} have different wildcards: {outputs.specs[0].text!r} "
                    f"has {{{', '.join(wildcard_names) or 'none'}}}, {spec.text!r} has {{{', '.join(sorted(names)) or 'none'}}}",
                    "Every output of a rule must carry the same wildcards.",
                )
        constraints = dict(self._constraints(ds["wildcard_constraints"])) if "wildcard_constraints" in ds else {}

        logs = self._paths(ds["log"], label) if "log" in ds else PathList([], {})
        self._check_wildcards("log", logs, ds.get("log"), wildcard_names, label)
        benchmark = None
        if "benchmark" in ds:
            benchmark = self._pattern(self._single(ds["benchmark"], str, "path (a string)"), ds["benchmark"])
        message = self._single(ds["message"], str, "string") if "message" in ds else None
        threads = self._single(ds["threads"], int, "whole number") if "threads" in ds else 1
        retries = self._single(ds["retries"], int, "whole number") if "retries" in ds else 0
        priority = self._single(ds["priority"], (int, float), "number") if "priority" in ds else 0
        if threads < 1:
            raise FlowfileError.at(ds["threads"].pos, "threads: must be at least 1")
        if retries < 0:
            raise FlowfileError.at(ds["retries"].pos, "retries: cannot be negative")
        resources: dict[str, int] = {}
        if "resources" in ds:
            d = ds["resources"]
            if d.value.positional:
                raise FlowfileError.at(d.pos, "resources: takes name=number entries")
            for kw in d.value.named:
                v = self._eval(kw.value)
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                    raise FlowfileError.at(kw.value.pos, f"resource {kw.name} must be a non-negative number")
                resources[kw.name] = v
        schema = self._schema(ds["schema"], outputs, label) if "schema" in ds else None
        default_target = bool(self._single(ds["default_target"], bool, "True or False")) if "default_target" in ds else False
        action = self._action(r, ds, label)
        if action is not None:
            try:
                action.check_outputs([(spec.text, spec.flags) for spec in outputs.specs])
            except ActionError as e:
                raise FlowfileError.at(ds[action.kind].pos if action.kind in ds else r.pos, f"{label}: {e}") from None
        rule = Rule(
            name=name, checkpoint=r.checkpoint, pos=r.pos, outputs=outputs,
            wildcard_names=wildcard_names, constraints=constraints,
            input_expr=ds["input"].value if "input" in ds else None, inputs=None,
            params_expr=ds["params"].value if "params" in ds else None, params=None, logs=logs,
            benchmark=benchmark, message=message, threads=threads, resources=resources,
            retries=retries, priority=priority, action=action, schema=schema,
            default_target=default_target,
            directive_pos={d.name: d.pos for d in r.directives},
        )
        if rule.benchmark is not None:
            extra = [n for n in rule.benchmark.names if n not in wildcard_names]
            if extra:
                raise FlowfileError.at(ds["benchmark"].pos, f"benchmark of {label} uses wildcard {{{extra[0]}}}, which its output does not have")
        self.rules[name] = rule
        if rule.checkpoint:
            self.guard.add(rule)
        # As in Snakemake, rules of included files are not the default target
        # (unless the main file has no rule at all).
        if self.first_rule is None and len(self.including) == 1:
            self.first_rule = name
        self.first_any = self.first_any or name
        if default_target:
            self.default_target = name
        if "localrule" in ds and self._single(ds["localrule"], bool, "True or False"):
            self.localrules.add(name)

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

    def _params(self, args: ast.Arguments) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, e in enumerate(args.positional):
            out[f"_{i}"] = self._eval(e)
        for kw in args.named:
            out[kw.name] = self._eval(kw.value)
        return out

    def _pattern(self, text: str, d: ast.Directive) -> Pattern:
        try:
            pattern = parse_pattern(_clean_path(text))
            pattern.regex({})  # check inline constraints now
            return pattern
        except PatternError as e:
            raise FlowfileError.at(d.pos, str(e)) from None

    def _paths(self, d: ast.Directive, label: str) -> PathList:
        return paths_from(d, lambda e: self._eval(e), label)


def paths_from(d: ast.Directive, evaluate_expr, label: str) -> PathList:
    """Evaluate the entries of input:/output:/log: into a PathList."""
    specs: list[PathSpec] = []
    names: dict[str, int | tuple[int, int]] = {}

    def add(value: Any, e: ast.Expr) -> int:
        count = 0
        if isinstance(value, (list, tuple)):
            for v in value:
                count += add(v, e)
            return count
        if not isinstance(value, str):
            raise FlowfileError.at(e.pos, f"{d.name}: entries of {label} must be paths (strings), not {type(value).__name__}")
        if not value:
            raise FlowfileError.at(e.pos, f"an empty path in {d.name}: of {label}")
        problem = path_problem(value)
        if problem:
            raise FlowfileError.at(e.pos, f"{d.name}: of {label}: {problem}")
        flags = value.flags if isinstance(value, FlaggedPath) else frozenset()
        try:
            pattern = parse_pattern(_clean_path(str(value)))
            if pattern.names:
                pattern.regex({})  # check inline constraints now
        except PatternError as err:
            raise FlowfileError.at(e.pos, str(err)) from None
        specs.append(PathSpec(pattern, flags))
        return 1

    for e in d.value.positional:
        add(evaluate_expr(e), e)
    for kw in d.value.named:
        start = len(specs)
        value = evaluate_expr(kw.value)
        n = add(value, kw.value)
        names[kw.name] = start if (n == 1 and not isinstance(value, (list, tuple))) else (start, start + n)
    return PathList(specs, names)


MAX_PATH = 4096  # Linux's PATH_MAX, in bytes


def path_problem(path: str) -> str | None:
    """Why no file could have this name, or None."""
    if "\x00" in path:
        return f"a path cannot contain a NUL byte: {path[:80]!r}"
    try:
        size = len(os.fsencode(path))
    except UnicodeEncodeError:
        return f"a path that no file can have: {path[:80]!r}"
    if size > MAX_PATH:
        return f"a path of more than {MAX_PATH} bytes: {path[:80]!r}..."
    return None


def _yaml():
    """PyYAML, imported only for a workflow with a config (it costs start-up time)."""
    import yaml

    return yaml


def _clean_path(text: str) -> str:
    while text.startswith("./"):
        text = text[2:]
    return text


def _merge(base: dict, new: dict) -> None:
    """Update nested dicts in place (Snakemake merges config files this way)."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def job_namespaces(rule: Rule, wildcards: dict[str, str], params: dict[str, Any]) -> tuple[Namespace, Namespace]:
    """The job's ``wildcards`` and ``params`` objects (params strings get the wildcards)."""
    wc = Namespace(wildcards)
    values = {}
    positional = []
    for k, v in params.items():
        v = _format_param(v, wildcards)
        if k.startswith("_") and k[1:].isdigit():
            positional.append(v)
        else:
            values[k] = v
    return wc, Namespace(values, positional)


def _format_param(value: Any, wildcards: dict[str, str]) -> Any:
    if isinstance(value, str):
        try:
            return parse_pattern(value).format(wildcards)
        except PatternError:
            return value
    if isinstance(value, list):
        return [_format_param(v, wildcards) for v in value]
    return value


__all__ = ["Rule", "Workflow", "PathSpec", "PathList", "load", "find_flowfile",
           "parse_config_overrides", "job_namespaces", "NamedList", "Path"]
