"""Which rule can make a path: output patterns indexed by literal prefix,
and the guard that defers globbing inside checkpoint outputs."""

from __future__ import annotations

import os
from collections.abc import Iterable

from flow.grammar import FlowfileError

from .model import job_id
from .patterns import PatternError
from .signals import CheckpointPending


class _Entry:
    __slots__ = ("rule", "regex", "skeleton", "is_dir")

    def __init__(self, rule, regex, skeleton, is_dir: bool):
        self.rule, self.regex, self.skeleton, self.is_dir = rule, regex, skeleton, is_dir


class PatternIndex:
    """Output patterns bucketed by their literal prefix.

    A path is tested only against patterns whose prefix it starts with and
    whose literal parts it holds in order (``Skeleton``): one dict lookup per distinct prefix
    length instead of one regex per rule."""

    def __init__(self, rules: Iterable, constraints: dict[str, str]):
        self.by_prefix: dict[str, list[_Entry]] = {}
        for rule in rules:
            merged = {**constraints, **rule.constraints}
            for spec in (*rule.outputs.specs, *rule.logs.specs):  # a log is an output too
                try:
                    regex = spec.pattern.regex(merged)
                except PatternError as e:
                    raise FlowfileError.at(rule.where("output"), str(e)) from None
                entry = _Entry(rule, regex, spec.pattern.skeleton(merged), "directory" in spec.flags)
                self.by_prefix.setdefault(spec.pattern.prefix, []).append(entry)
        self.lengths = sorted({len(p) for p in self.by_prefix})

    def candidates(self, path: str, dirs_only: bool = False) -> list[tuple]:
        found: list[tuple] = []
        seen: set[tuple[str, tuple]] = set()
        n = len(path)
        for length in self.lengths:
            if length > n:
                break
            for e in self.by_prefix.get(path[:length], ()):
                if dirs_only and not e.is_dir:
                    continue
                if not e.skeleton.fits(path):
                    continue
                m = e.regex.match(path)
                if m is None:
                    continue
                wc = {k: v for k, v in m.groupdict().items()}
                key = (e.rule.name, tuple(wc.items()))
                if key not in seen:
                    seen.add(key)
                    found.append((e.rule, _ordered(e.rule, wc)))
        return found


def _ordered(rule, wc: dict[str, str]) -> dict[str, str]:
    return {k: wc[k] for k in rule.wildcard_names if k in wc}


class CheckpointGuard:
    """Raises CheckpointPending when glob_wildcards looks inside the output of
    a checkpoint job that has not completed in this run."""

    def __init__(self, constraints: dict[str, str]):
        self.constraints = constraints
        self.rules: list = []
        self.index = PatternIndex([], constraints)
        self.completed: set[str] = set()

    def add(self, rule) -> None:
        """Another checkpoint rule is known (the loader adds them as it goes)."""
        self.rules.append(rule)
        self.index = PatternIndex(self.rules, self.constraints)

    def __call__(self, directory: str) -> None:
        pending = set()
        d = os.path.normpath(directory)
        while d and d not in (".", "/"):
            for rule, wc in self.index.candidates(d):
                if job_id(rule.name, wc) not in self.completed:
                    pending.add(d)
            d = os.path.dirname(d)
        if pending:
            raise CheckpointPending(pending)


