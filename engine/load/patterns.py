"""File name patterns with wildcards: ``results/{sample}.txt``,
``{year,[0-9]{4}}``; matching a path against them and filling them in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class Wildcard:
    name: str
    regex: str | None  # inline constraint, if any


class PatternError(ValueError):
    pass


_NAME = re.compile(r"[^\W\d]\w*\Z")


@dataclass(frozen=True)
class Pattern:
    text: str
    parts: tuple[str | Wildcard, ...]
    names: tuple[str, ...] = field(init=False, compare=False, repr=False)  # its wildcards, each once

    def __post_init__(self) -> None:
        names = () if len(self.parts) < 2 and not any(isinstance(p, Wildcard) for p in self.parts) else \
            tuple(dict.fromkeys(p.name for p in self.parts if isinstance(p, Wildcard)))
        object.__setattr__(self, "names", names)

    @property
    def prefix(self) -> str:
        """The literal text before the first wildcard (all of it if there is none)."""
        first = self.parts[0] if self.parts else ""
        return first if isinstance(first, str) else ""

    def regex(self, constraints: dict[str, str]) -> re.Pattern:
        out, seen = [], set()
        for p in self.parts:
            if isinstance(p, str):
                out.append(re.escape(p))
            elif p.name in seen:
                out.append(f"(?P={p.name})")
            else:
                seen.add(p.name)
                rx = p.regex or constraints.get(p.name) or ".+"
                try:
                    re.compile(rx)
                except re.error as e:
                    raise PatternError(f"bad constraint {rx!r} for wildcard {{{p.name}}} in {self.text!r}: {e}") from None
                out.append(f"(?P<{p.name}>{rx})")
        try:
            return re.compile("".join(out) + r"\Z", re.DOTALL)
        except re.error as e:
            raise PatternError(f"bad wildcard constraint in {self.text!r}: {e}") from None

    def skeleton(self, constraints: dict[str, str]) -> Skeleton:
        """What a path must contain to match (see ``Skeleton``); a wildcard
        takes at least one character, or none when constrained (a constraint
        may match the empty string)."""
        parts = list(self.parts)
        head = parts.pop(0) if parts and isinstance(parts[0], str) else ""
        tail = parts.pop() if self.names and parts and isinstance(parts[-1], str) else ""
        middle: list[tuple[int, str]] = []
        gap = 0
        for p in parts:
            if isinstance(p, str):
                middle.append((gap, p))
                gap = 0
            else:
                gap += 0 if (p.regex or p.name in constraints) else 1
        return Skeleton(head, tuple(middle), tail, gap)

    @cached_property
    def _template(self) -> str | None:
        """The pattern as a ``str.format_map`` template (None if a name cannot be one)."""
        if not all(isinstance(p, str) or p.name.isidentifier() for p in self.parts):
            return None
        return "".join(p.replace("{", "{{").replace("}", "}}") if isinstance(p, str) else "{" + p.name + "}"
                       for p in self.parts)

    def format(self, wildcards: dict[str, str]) -> str:
        template = self._template
        if template is not None:
            try:
                return template.format_map(wildcards)
            except KeyError as e:
                raise PatternError(f"{{{e.args[0]}}}") from None
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
            else:
                try:
                    out.append(str(wildcards[p.name]))
                except KeyError:
                    raise PatternError(f"{{{p.name}}}") from None
        return "".join(out)


@dataclass(frozen=True)
class Skeleton:
    """The literal parts of a pattern, in order, checked before its regex: on
    a path that does not match, the regex backtracks through every way of
    splitting the path among the wildcards, which grows exponentially with
    their number. For unconstrained wildcards the check is exact."""

    head: str  # the path starts with it
    middle: tuple[tuple[int, str], ...]  # (least characters before it, literal), in order
    tail: str  # the path ends with it
    last_gap: int  # least characters before the tail

    def fits(self, path: str) -> bool:
        if not path.startswith(self.head) or not path.endswith(self.tail):
            return False
        pos, end = len(self.head), len(path) - len(self.tail)
        if end < pos:
            return False
        for gap, literal in self.middle:
            i = path.find(literal, pos + gap, end)
            if i < 0:
                return False
            pos = i + len(literal)
        return end - pos >= self.last_gap


def parse_pattern(text: str) -> Pattern:
    """Split ``text`` into literals and wildcards; ``{{``/``}}`` are literal braces."""
    if "{" not in text and "}" not in text:  # a plain path (most of them): one literal
        return Pattern(text, (text,) if text else ())
    parts: list[str | Wildcard] = []
    lit: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "{":
            if text.startswith("{{", i):
                lit.append("{")
                i += 2
                continue
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise PatternError(f"unclosed '{{' in {text!r}")
            body = text[i + 1 : j - 1]
            name, _, regex = body.partition(",")
            name = name.strip()
            if not _NAME.match(name):
                raise PatternError(f"bad wildcard {{{body}}} in {text!r}")
            if lit:
                parts.append("".join(lit))
                lit = []
            parts.append(Wildcard(name, regex.strip() or None))
            i = j
        elif c == "}":
            if text.startswith("}}", i):
                lit.append("}")
                i += 2
                continue
            raise PatternError(f"single '}}' in {text!r} (write '}}}}' for a literal brace)")
        else:
            lit.append(c)
            i += 1
    if lit:
        parts.append("".join(lit))
    return Pattern(text, tuple(parts))


def has_wildcards(text: str) -> bool:
    return bool(parse_pattern(text).names)
