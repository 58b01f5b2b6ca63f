"""``rules.NAME.output`` (and ``.input``, ``.log``, ``.params``) and
``checkpoints.NAME.get(**wildcards)`` in Flowfile expressions: other rules,
as Snakemake exposes them.

An output or log taken this way is tied to its rule (the flag
``rule:NAME``): used as an input, the file is made by rule NAME even where
another rule's output could also match it.
"""

from __future__ import annotations

from typing import Any

from flow.rules import NamedList, Namespace

from .builtins import FlaggedPath
from .index import CheckpointGuard
from .model import TIE, PathList, Rule, job_id
from .signals import CheckpointPending


class RuleRefs(NamedList):
    """The ``rules`` name: one entry per rule loaded so far, looked up live
    (a rule may refer to any rule written before it)."""

    def __init__(self, rules: dict[str, Rule]):
        super().__init__()
        object.__setattr__(self, "_rules", rules)

    def keys(self):
        return object.__getattribute__(self, "_rules").keys()

    def __getattr__(self, name: str) -> Namespace:
        rules = object.__getattribute__(self, "_rules")
        if name not in rules:
            known = ", ".join(rules) or "none yet"
            raise AttributeError(f"no rule named {name!r} before this point (rules: {known})")
        return _rule_ref(rules[name])

    def __reduce__(self):
        return (_empty_refs, ())


def _empty_refs() -> RuleRefs:
    return RuleRefs({})


def _rule_ref(rule: Rule) -> Namespace:
    """What ``rules.NAME`` holds: its outputs and logs (tied to it), and its
    inputs and params once they are known."""
    values: dict[str, Any] = {"output": _paths(rule.outputs, rule.name), "log": _paths(rule.logs, rule.name)}
    if rule.inputs is not None:
        values["input"] = _paths(rule.inputs, None)
    if rule.params is not None:
        values["params"] = Namespace({k: v for k, v in rule.params.items() if not k.startswith("_")})
    return Namespace(values)


def _paths(plist: PathList, tie: str | None) -> NamedList:
    flags = frozenset({TIE + tie}) if tie else frozenset()
    items = [FlaggedPath(s.text, flags) if flags else s.text for s in plist.specs]
    return NamedList(items, plist.names)


class CheckpointRefs:
    """The ``checkpoints`` name: ``checkpoints.NAME.get(**wildcards)`` in an
    input function is that checkpoint job's outputs once it has run in this
    run; before, it raises ``CheckpointPending``, the job waits for the
    checkpoint and its inputs are evaluated again after (as in Snakemake)."""

    def __init__(self, rules: dict[str, Rule], guard: CheckpointGuard):
        self.rules, self.guard = rules, guard

    def flow_attribute(self, name: str) -> _Checkpoint:
        rule = self.rules.get(name)
        if rule is None or not rule.checkpoint:
            known = ", ".join(r.name for r in self.rules.values() if r.checkpoint) or "none"
            raise AttributeError(f"no checkpoint named {name!r} (checkpoints: {known})")
        return _Checkpoint(rule, self.guard)

    def __repr__(self) -> str:
        return "checkpoints"

    def __reduce__(self):
        """What a worker's job receives: the checkpoint rules alone and the
        checkpoint jobs completed so far (not every rule and index: a
        ``run:`` block's globals are sent to its worker)."""
        checkpoints = {name: rule for name, rule in self.rules.items() if rule.checkpoint}
        return (CheckpointRefs, (checkpoints, _Completed(set(self.guard.completed))))


class _Completed:
    """A checkpoint guard as a worker sees it: which checkpoint jobs had completed."""

    def __init__(self, completed: set[str]):
        self.completed = completed


class _Checkpoint:
    def __init__(self, rule: Rule, guard: CheckpointGuard):
        self.rule, self.guard = rule, guard

    def flow_method(self, name: str):
        return self.get if name == "get" else None

    def get(self, **wildcards: Any) -> Namespace:
        missing = [n for n in self.rule.wildcard_names if n not in wildcards]
        if missing:
            raise KeyError(f"checkpoints.{self.rule.name}.get() needs wildcard {missing[0]}")
        values = {n: str(wildcards[n]) for n in self.rule.wildcard_names}
        outputs, names = self.rule.outputs.format(values)
        if job_id(self.rule.name, values) not in self.guard.completed:
            raise CheckpointPending(set(outputs))
        return Namespace({"output": NamedList(outputs, names)})

    def __repr__(self) -> str:
        return f"checkpoints.{self.rule.name}"
