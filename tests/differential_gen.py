"""A seeded generator of small Snakefiles within FLOWFILE.md's contract, and of
random edits to them, for the differential test against Snakemake
(``tests/test_differential.py``).

A workflow is a handful of rules over per-sample source files
``src/{s}.txt``: per-sample rules (one or two outputs) chained on one
another, aggregations over ``expand()``, flag rules with ``touch()``
outputs, and pairs of rules that can make the same file (settled by
``ruleorder:``, or by a rule whose output has no wildcards). Every action is
a shell command made of portable tools whose output depends on the inputs,
the params and the wildcards. The Snakefile is rendered from the data
below, so an edit changes the data and renders it again."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

# Every feature the generator knows how to write.
ALL_FEATURES = frozenset({
    "wildcards",          # per-sample rules "DIR/{s}.txt"
    "expand",             # expand(PATTERN, s=SAMPLES) in aggregations and in `all`
    "glob_wildcards",     # SAMPLES = sorted(glob_wildcards("src/{s}.txt").s)
    "named_input",        # input: data=..., ref="ref.txt"
    "temp",               # temp() outputs consumed by a later rule
    "log",                # log: files written by the action
    "ruleorder",          # two rules making the same files, `ruleorder: b > a`
    "specific_rule",      # a rule for one file beside a rule with wildcards (no ruleorder)
    "touch",              # touch() flag outputs
    "rules_ref",          # rules.NAME.output[i] as an input (and inside expand)
    "rules_ref_log",      # rules.NAME.log[0] as an input
    "log_as_input",       # a log file read by another rule
    "params",             # params: p="..." used in the action
    "wildcards_all",      # {wildcards} alone in the action
    "multi_output",       # a rule with two outputs, consumed by index
    "params_wildcards",   # params: p="word-{s}", formatted with the job's wildcards
    "wildcard_constraints",  # a global wildcard_constraints: s="[a-z]+"
    "expand_keep",        # expand("DIR/{{s}}.{i}.txt", i=[1, 2]): both outputs of a two-output rule
    "lambda",             # input: lambda wildcards: ..., params: p=lambda wildcards: ...
})

# Every kind of edit the generator knows how to make.
ALL_EDITS = frozenset({
    "change_source",      # append a line to a source file
    "touch_source",       # set a source's modification time to now, content unchanged
    "delete_output",      # delete a file the first run made (not a log)
    "delete_log",         # delete a log file the first run made
    "change_params",      # change a params value in the Snakefile
    "change_shell",       # change a filter of a shell command in the Snakefile
    "add_source",         # add src/NEW.txt, which glob_wildcards picks up
})

WORDS = ["apple", "kiwi", "fig", "plum", "pear", "lime", "date", "yuzu", "apple", "fig"]
FILTERS = ["cat", "sort", "sort -r", "tr a-z A-Z", "tr -d aeiou", "wc -l", "sed -n 1,2p",
           "tail -n 2", "uniq", "sort -u"]
SAMPLE_NAMES = ["a", "b", "c", "d", "e", "f", "g", "h"]


@dataclass
class Stream:
    """A per-sample output pattern ``prefix{s}suffix`` (or a single file)
    that later rules may read."""
    pattern: str
    rule: str | None = None     # the one rule making it (None: a source, or two rules can)
    index: int = 0              # its index in that rule's outputs (or logs)
    attr: str = "output"        # rules.NAME.output or rules.NAME.log
    per_sample: bool = True
    temp: bool = False
    consumed: bool = False


@dataclass
class Rule:
    name: str
    kind: str                   # map, multi, agg, flag, alt
    inputs: list = field(default_factory=list)      # (name or None, Stream, how)
    outputs: list = field(default_factory=list)     # Streams (or literal paths for alt-one)
    params: dict = field(default_factory=dict)      # name -> (value, as_lambda)
    log: str | None = None
    filters: list = field(default_factory=list)     # one per output (flag rules: none)
    echo_wildcards: bool = False


def _literal(text: str) -> str:
    return '"' + text + '"'


class Workflow:
    def __init__(self, seed: int, features: frozenset[str]):
        self.seed = seed
        self.features = features
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        self.rules: list[Rule] = []
        self.ruleorders: list[str] = []
        self.sources: dict[str, str] = {}
        self._build()

    # -- generation -------------------------------------------------------------------

    def _want(self, feature: str, p: float) -> bool:
        # One draw whether the feature is on or not, so that switching a
        # feature on changes little else in the seeds' workflows.
        if self.rng.random() < p and feature in self.features:
            self.used.add(feature)
            return True
        return False

    def _text(self) -> str:
        return "".join(self.rng.choice(WORDS) + "\n" for _ in range(self.rng.randint(2, 5)))

    def _build(self) -> None:
        rng = self.rng
        self.samples = sorted(rng.sample(SAMPLE_NAMES[:5], rng.randint(2, 3)))
        self.glob = self._want("glob_wildcards", 0.5)
        self.constraints = self._want("wildcard_constraints", 0.3)
        for s in self.samples:
            self.sources[f"src/{s}.txt"] = self._text()
        self.sources["ref.txt"] = self._text()
        self.used.add("wildcards")
        streams = [Stream("src/{s}.txt")]
        singles: list[Stream] = []
        budget = rng.randint(2, 7)          # rules besides `all`
        n = 0
        while budget > 0:
            n += 1
            kinds = ["map", "map", "multi", "agg", "flag"]
            if budget >= 2:
                kinds += ["alt", "alt"]
            kind = rng.choice(kinds)
            if kind == "multi" and "multi_output" not in self.features:
                kind = "map"
            if kind == "agg" and "expand" not in self.features:
                kind = "map"
            if kind == "flag" and "touch" not in self.features:
                kind = "map"
            if kind == "alt" and not ({"ruleorder", "specific_rule"} & self.features):
                kind = "map"
            name = f"{kind}{n}"
            if kind == "alt":
                budget -= 2
                streams.append(self._alt(name, streams))
                continue
            budget -= 1
            if kind == "agg":
                singles.append(self._agg(name, streams))
            elif kind == "flag":
                self._flag(name, streams)
            else:
                streams.extend(self._map(name, streams, 2 if kind == "multi" else 1))
        self._all(streams, singles)

    def _pick(self, streams: list[Stream]) -> Stream:
        # Prefer recent streams, so that chains grow deeper than one step.
        s = streams[-1] if self.rng.random() < 0.5 else self.rng.choice(streams)
        s.consumed = True
        return s

    def _how(self, stream: Stream) -> str:
        """How an input names a per-sample stream: a string, rules.X, or a lambda."""
        if stream.rule and self._want("rules_ref", 0.7 if stream.attr == "log" else 0.4):
            if stream.attr == "log":
                self.used.add("rules_ref_log")
            return "rules"
        if self._want("lambda", 0.25):
            return "lambda"
        return "string"

    def _main_input(self, rule: Rule, streams: list[Stream]) -> None:
        up = self._pick(streams)
        key = "data" if self._want("named_input", 0.4) else None
        pair = [s for s in streams if s.rule == up.rule and s.attr == "output"] if up.rule else []
        if len(pair) == 2 and self._want("expand_keep", 0.6):
            for s in pair:
                s.consumed = True
            rule.inputs.append((key, pair[0], "expand-keep"))
            return
        rule.inputs.append((key, up, self._how(up)))
        if key and self.rng.random() < 0.5:
            rule.inputs.append(("ref", Stream("ref.txt", per_sample=False), "string"))

    def _extras(self, rule: Rule) -> None:
        if self._want("params", 0.5):
            as_lambda = self._want("lambda", 0.3)
            value = self.rng.choice(WORDS)
            if not as_lambda and self._want("params_wildcards", 0.3):
                value += "-{s}"
            elif self.rng.random() < 0.4:
                value += " " + self.rng.choice(WORDS)
            rule.params["p"] = (value, as_lambda)
        rule.echo_wildcards = self._want("wildcards_all", 0.3)

    def _map(self, name: str, streams: list[Stream], n_out: int) -> list[Stream]:
        rule = Rule(name, "map" if n_out == 1 else "multi")
        self._main_input(rule, streams)
        if n_out == 2:
            self.used.add("multi_output")
            outs = [Stream(f"{name}/{{s}}.1.txt", name, 0, temp=self._want("temp", 0.2)),
                    Stream(f"{name}/{{s}}.2.txt", name, 1, temp=self._want("temp", 0.2))]
        else:
            outs = [Stream(f"{name}/{{s}}.txt", name, 0, temp=self._want("temp", 0.3))]
        rule.outputs = outs
        rule.filters = [self.rng.choice(FILTERS) for _ in outs]
        self._extras(rule)
        if self._want("log", 0.4):
            rule.log = f"logs/{name}/{{s}}.log"
            if self._want("log_as_input", 0.4):
                outs = outs + [Stream(rule.log, name, 0, attr="log")]
        self.rules.append(rule)
        return outs

    def _agg(self, name: str, streams: list[Stream]) -> Stream:
        self.used.add("expand")
        rule = Rule(name, "agg")
        up = self._pick(streams)
        if up.per_sample:
            how = "rules" if up.rule and self._want("rules_ref", 0.4) else "string"
            rule.inputs.append((None, up, "expand-" + how))
        else:
            rule.inputs.append((None, up, "string"))
        out = Stream(f"{name}/all.txt", name, 0, per_sample=False)
        rule.outputs = [out]
        rule.filters = [self.rng.choice(FILTERS)]
        if self._want("params", 0.4):
            rule.params["p"] = (self.rng.choice(WORDS), False)
        if self._want("log", 0.3):
            rule.log = f"logs/{name}.log"
        self.rules.append(rule)
        return out

    def _flag(self, name: str, streams: list[Stream]) -> None:
        self.used.add("touch")
        rule = Rule(name, "flag")
        up = self._pick(streams)
        rule.inputs.append((None, up, self._how(up)))
        rule.outputs = [Stream(f"{name}/{{s}}.done", name, 0)]
        if self._want("log", 0.5):
            rule.log = f"logs/{name}/{{s}}.log"
        self.rules.append(rule)
        streams.append(rule.outputs[0])     # an empty flag, which a later rule may read

    def _alt(self, name: str, streams: list[Stream]) -> Stream:
        """Two rules that can make ``NAME/{s}.txt``: with ``ruleorder:`` the
        second wins; without, a rule for the first sample's file alone wins
        for that file."""
        modes = [m for m in ("ruleorder", "specific_rule") if m in self.features]
        mode = self.rng.choice(modes)
        self.used.add(mode)
        out = Stream(f"{name}/{{s}}.txt", None, 0)
        first = Rule(f"{name}_x", "map")
        self._main_input(first, streams)
        first.outputs = [out]
        first.filters = [self.rng.choice(FILTERS)]
        self._extras(first)
        if mode == "ruleorder":
            second = Rule(f"{name}_y", "map")
            self._main_input(second, streams)
            second.outputs = [out]
            self._extras(second)
            self.ruleorders.append(f"{name}_y > {name}_x")
        else:
            second = Rule(f"{name}_one", "one")
            up = self._pick(streams)
            second.inputs.append((None, up, "one"))
            second.outputs = [Stream(f"{name}/{self.samples[0]}.txt", None, 0, per_sample=False)]
            if self._want("params", 0.5):
                second.params["p"] = (self.rng.choice(WORDS), False)
        second.filters = [self.rng.choice(FILTERS)]
        self.rules += [first, second]
        return out

    def _all(self, streams: list[Stream], singles: list[Stream]) -> None:
        finals = []
        for s in streams[1:] + singles:
            if s.consumed and s.temp:
                continue
            s.temp = False          # a temp() nobody reads would be Snakemake's business only
            finals.append(s)
        if not finals:
            finals = [streams[-1]]
        self.finals = finals

    # -- rendering --------------------------------------------------------------------

    def _input_expr(self, stream: Stream, how: str) -> str:
        if how == "rules":
            return f"rules.{stream.rule}.{stream.attr}[{stream.index}]"
        if how == "lambda":
            prefix, suffix = stream.pattern.split("{s}")
            return f'lambda wildcards: "{prefix}" + wildcards.s + "{suffix}"'
        if how == "expand-string":
            return f"expand({_literal(stream.pattern)}, s=SAMPLES)"
        if how == "expand-rules":
            return f"expand(rules.{stream.rule}.{stream.attr}[{stream.index}], s=SAMPLES)"
        if how == "expand-keep":
            stem = stream.pattern.replace("{s}", "{{s}}").rsplit(".", 2)[0]
            return f'expand("{stem}.{{i}}.txt", i=[1, 2])'
        if how == "one":
            return _literal(stream.pattern.replace("{s}", self.samples[0]))
        return _literal(stream.pattern)

    def _output_expr(self, stream: Stream, rule: Rule) -> str:
        if rule.kind == "flag":
            return f"touch({_literal(stream.pattern)})"
        if stream.temp:
            return f"temp({_literal(stream.pattern)})"
        return _literal(stream.pattern)

    def _shell(self, rule: Rule) -> str:
        parts = []
        keys = [key for key, _, _ in rule.inputs if key]
        # Named inputs are read by name ({input.data} {input.ref}), others as {input}.
        ins = " ".join(f"{{input.{k}}}" for k in keys) if keys else "{input}"
        if rule.kind == "flag":
            parts.append(f"cat {ins} > /dev/null")
        elif len(rule.outputs) == 2:
            parts += [f"cat {ins} | {rule.filters[0]} > {{output[0]}}",
                      f"cat {ins} | {rule.filters[1]} > {{output[1]}}"]
        else:
            parts.append(f"cat {ins} | {rule.filters[0]} > {{output[0]}}")
        if rule.kind != "flag":
            if "p" in rule.params:
                parts.append("echo {params.p} >> {output[0]}")
            if rule.echo_wildcards:
                parts.append("echo {wildcards} >> {output[0]}")
            elif rule.kind in ("map", "multi"):
                parts.append("echo {wildcards.s} >> {output[0]}")
        if rule.log:
            parts.append("cat {input} | cksum > {log}")  # (what it read decides what it logs)
        return "; ".join(parts)

    def snakefile(self) -> str:
        lines = []
        if self.glob:
            lines.append('SAMPLES = sorted(glob_wildcards("src/{s}.txt").s)')
        else:
            lines.append("SAMPLES = [" + ", ".join(_literal(s) for s in self.samples) + "]")
        lines.append("")
        if self.constraints:
            lines += ["wildcard_constraints:", '    s="[a-z]+"', ""]
        for order in self.ruleorders:
            lines.append(f"ruleorder: {order}")
        lines.append("")
        finals = []
        for s in self.finals:
            finals.append(f"expand({_literal(s.pattern)}, s=SAMPLES)" if s.per_sample else _literal(s.pattern))
        lines += ["rule all:", "    input:"] + [f"        {f}," for f in finals] + [""]
        for rule in self.rules:
            lines.append(f"rule {rule.name}:")
            lines.append("    input:")
            for key, stream, how in rule.inputs:
                expr = self._input_expr(stream, how)
                lines.append(f"        {key + '=' if key else ''}{expr},")
            lines.append("    output:")
            for out in rule.outputs:
                lines.append(f"        {self._output_expr(out, rule)},")
            if rule.params:
                lines.append("    params:")
                for key, (value, as_lambda) in rule.params.items():
                    if as_lambda:
                        lines.append(f'        {key}=lambda wildcards: "{value} " + wildcards.s,')
                    else:
                        lines.append(f"        {key}={_literal(value)},")
            if rule.log:
                lines.append(f"    log: {_literal(rule.log)}")
            lines.append(f"    shell: {_literal(self._shell(rule))}")
            lines.append("")
        return "\n".join(lines)

    def write(self, root: Path) -> None:
        for rel, text in self.sources.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (root / "Snakefile").write_text(self.snakefile())

    # -- edits ------------------------------------------------------------------------

    def edits(self, made: list[str], rng: random.Random, allowed: frozenset[str] = ALL_EDITS) -> list[tuple]:
        """1-3 random edits of the kinds ``allowed``, each a tuple ``(kind, ...)``;
        ``made`` lists the files the first run made (the same under both tools)."""
        kinds = ["change_source", "touch_source", "delete_output", "delete_log"]
        if any(r.params for r in self.rules):
            kinds.append("change_params")
        if any(r.filters for r in self.rules):
            kinds.append("change_shell")
        if self.glob:
            kinds.append("add_source")
        kinds = [k for k in kinds if k in allowed]
        out = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(kinds)
            if kind == "change_source":
                out.append((kind, rng.choice(sorted(self.sources)), rng.choice(WORDS)))
            elif kind == "touch_source":
                out.append((kind, rng.choice(sorted(self.sources))))
            elif kind in ("delete_output", "delete_log"):
                files = [f for f in made if f.startswith("logs/") == (kind == "delete_log")]
                if files:
                    out.append((kind, rng.choice(files)))
            elif kind == "change_params":
                rule = rng.choice([r for r in self.rules if r.params])
                out.append((kind, rule.name, rng.choice(WORDS) + "x"))
            elif kind == "change_shell":
                rule = rng.choice([r for r in self.rules if r.filters])
                i = rng.randrange(len(rule.filters))
                out.append((kind, rule.name, i, rng.choice([f for f in FILTERS if f != rule.filters[i]])))
            elif kind == "add_source":
                taken = set(self.sources) | {e[1] for e in out if e[0] == kind}
                name = next(s for s in SAMPLE_NAMES if f"src/{s}.txt" not in taken)
                out.append((kind, f"src/{name}.txt", self._text()))
        return out

    def apply(self, edit: tuple, roots: list[Path]) -> None:
        """Apply one edit to every copy in ``roots``."""
        kind = edit[0]
        by_name = {r.name: r for r in self.rules}
        if kind == "change_source":
            self.sources[edit[1]] += edit[2] + "\n"
            for root in roots:
                (root / edit[1]).write_text(self.sources[edit[1]])
        elif kind == "touch_source":
            for root in roots:
                os.utime(root / edit[1])
        elif kind in ("delete_output", "delete_log"):
            for root in roots:
                (root / edit[1]).unlink(missing_ok=True)
        elif kind == "add_source":
            self.sources[edit[1]] = edit[2]
            for root in roots:
                (root / edit[1]).write_text(edit[2])
        else:
            rule = by_name[edit[1]]
            if kind == "change_params":
                rule.params["p"] = (edit[2], rule.params["p"][1])
            else:
                rule.filters[edit[2]] = edit[3]
            for root in roots:
                (root / "Snakefile").write_text(self.snakefile())


def generate(seed: int, features: frozenset[str] = ALL_FEATURES) -> Workflow:
    return Workflow(seed, frozenset(features))


if __name__ == "__main__":          # print one workflow: python tests/differential_gen.py SEED
    import sys
    print(generate(int(sys.argv[1])).snakefile())
