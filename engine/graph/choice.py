"""Which rule makes a file when several rules' outputs match it, as
Snakemake chooses: the last ``ruleorder:`` clause that names both rules
decides; without one, a rule whose outputs have no wildcards ranks above one
whose outputs do. Two rules that can both make the file and neither ranks
above the other are an ambiguity, reported by the graph.

And which wildcard values a producing job takes: a file name can split into
values in more than one way (``{a}_{b}`` over ``x_y_z``); where the job that
needs the file has values for every wildcard of the producing rule, and they
format to the file, those are taken (Snakemake matches by wildcard names).
"""

from __future__ import annotations

import re
from functools import cmp_to_key

from ..load.model import Rule


class RuleOrder:
    """The ``ruleorder:`` clauses of a workflow, as a comparison of two rules."""

    def __init__(self, clauses: list[tuple[str, ...]]):
        self.rank: dict[tuple[str, str], int] = {}
        for clause in clauses:  # a later clause overrides an earlier one
            for i, high in enumerate(clause):
                for low in clause[i + 1:]:
                    if high != low:
                        self.rank[(high, low)], self.rank[(low, high)] = 1, -1

    def compare(self, a: Rule, b: Rule) -> int:
        """1 if ``a`` ranks above ``b``, -1 if below, 0 if neither does."""
        if a.name != b.name:
            said = self.rank.get((a.name, b.name))
            if said is not None:
                return said
        return bool(b.wildcard_names) - bool(a.wildcard_names)

    def highest_first(self, rules: list[Rule]) -> list[Rule]:
        return sorted(rules, key=cmp_to_key(self.compare), reverse=True)

    def strictly_highest(self, rule: Rule, others: list[Rule]) -> bool:
        return all(self.compare(rule, o) > 0 for o in others if o is not rule)


def consumer_values(rule: Rule, path: str, wanted: dict[str, str],
                    constraints: dict[str, str]) -> dict[str, str] | None:
    """The consumer's values for ``rule``'s wildcards, if they make ``path``
    from one of its outputs or logs and meet the constraints; else None."""
    if not rule.wildcard_names or not all(n in wanted for n in rule.wildcard_names):
        return None
    values = {n: str(wanted[n]) for n in rule.wildcard_names}
    merged = {**constraints, **rule.constraints}
    for spec in (*rule.outputs.specs, *rule.logs.specs):
        if spec.pattern.format(values) == path and _meets(spec.pattern, values, merged):
            return values
    return None


def _meets(pattern, values: dict[str, str], constraints: dict[str, str]) -> bool:
    inline = {p.name: p.regex for p in pattern.parts if not isinstance(p, str) and p.regex}
    for name, value in values.items():
        rx = inline.get(name) or constraints.get(name)
        if rx is not None and re.fullmatch(rx, value, re.DOTALL) is None:
            return False
    return True
