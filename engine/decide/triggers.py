"""``--rerun-triggers``: which differences make a job run again. A module
of its own, with no imports, because the command line's options name the
triggers when flow starts, before anything of the rebuilder is needed
(``flow --version`` must not import the grammar to print its help)."""

from __future__ import annotations

# What can make a job run again, in --rerun-triggers' words: the contents of
# its source inputs (or of its outputs, changed outside flow), its code
# (action, schema), its params, and its set of inputs (one added or removed).
TRIGGERS = ("content", "code", "params", "input")
# Snakemake's words for them: flow compares contents where Snakemake compares
# modification times; flow has no software environments to compare.
TRIGGER_ALIASES = {"mtime": ("content",), "software-env": ()}


def parse_triggers(words: list[str] | tuple[str, ...]) -> frozenset[str]:
    """``--rerun-triggers`` words as the set of ``TRIGGERS`` they enable
    (Snakemake's ``mtime`` and ``software-env`` too); ValueError naming a
    word that is neither."""
    out: set[str] = set()
    for word in words:
        if word in TRIGGERS:
            out.add(word)
        elif word in TRIGGER_ALIASES:
            out.update(TRIGGER_ALIASES[word])
        else:
            raise ValueError(word)
    return frozenset(out)
