"""Paths to suggest for a target that nothing makes ("Did you mean ...?"):
what the rules make and the files that exist, near the target's name."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable

from ..load.index import PatternIndex
from ..load.model import Rule


def close_files(path: str, rules: Iterable[Rule], index: PatternIndex) -> list[str]:
    """Paths near a target that nothing makes, to suggest in its place: the
    literal outputs of rules, each output pattern filled in from the target's
    own path components (those that fit, with its literal ones and its
    extension put back), and the existing file reached by correcting each
    missing component to a close name beside it."""
    found: list[str] = []
    comps = path.split("/")
    for rule in rules:
        for pattern in rule.outputs.patterns:
            if not pattern.names:
                found.append(pattern.text)
                continue
            filled = _fill_in(pattern, comps)
            if filled is not None and index.candidates(filled):
                found.append(filled)
    existing, here = [], ""
    for comp in comps:
        at = os.path.join(here, comp) if here else comp
        if not os.path.exists(at):
            try:
                names = sorted(os.listdir(here or "."))[:2000]
            except OSError:
                break
            close = difflib.get_close_matches(comp, names, n=1, cutoff=0.75)
            if not close:
                break
            at = os.path.join(here, close[0]) if here else close[0]
        existing.append(at)
        here = at
    else:
        if existing and os.path.isfile(here):
            found.append(here)
    return found


def _fill_in(pattern, comps: list[str]) -> str | None:
    """``pattern`` with the wildcard components taken from ``comps`` (a path
    split at /) when they fit, literal components as the pattern has them, and
    a component that does not fit given the pattern's extension; None when the
    two have not as many components."""
    pcomps: list[list] = [[]]
    for part in pattern.parts:
        if isinstance(part, str):
            pieces = part.split("/")
            pcomps[-1].append(pieces[0])
            pcomps.extend([p] for p in pieces[1:])
        else:
            pcomps[-1].append(part)
    if len(pcomps) != len(comps):
        return None
    out = []
    for parts, comp in zip(pcomps, comps, strict=True):
        parts = [p for p in parts if p != ""]
        if all(isinstance(p, str) for p in parts):
            out.append("".join(parts))
            continue
        rx = "".join(re.escape(p) if isinstance(p, str) else "(.+)" for p in parts)
        if re.fullmatch(rx, comp):
            out.append(comp)
        elif isinstance(parts[-1], str) and parts[-1].startswith("."):
            out.append(os.path.splitext(comp)[0] + parts[-1])
        else:
            return None
    return "/".join(out)
