"""``flow cache``: look at and prune a shared cache of job results
(``run.shared_cache``), which no run ever shrinks by itself. The store is
imported only when a command runs (start-up is part of the UX)."""

from __future__ import annotations

import os
import re

import click

from .common import CONTEXT, say

_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


class Size(click.ParamType):
    """A number of bytes: ``123456``, or with a unit, ``500M``, ``10G``,
    ``2GiB``, ``1.5T``; every unit is a power of 1024, as ``flow cache
    stats`` counts (so that a size it shows can be given back)."""

    name = "size"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        m = _SIZE.fullmatch(str(value).strip())
        if m is None:
            self.fail(f"{value!r} is not a size: give bytes (123456) or a number with K, M, G "
                      "or T (500M, 10G, 2GiB, 1.5T; powers of 1024)", param, ctx)
        return int(float(m[1]) * _UNITS[m[2].lower()])


def _cache_option(fn):
    fn = click.option("--debug", "_debug", is_flag=True, hidden=True)(fn)  # (main() reads it)
    return click.option("--cache", "root", metavar="DIR", envvar="FLOW_CACHE",
                        help="The cache directory (default: $FLOW_CACHE).")(fn)


@click.group(context_settings=CONTEXT)
def cache() -> None:
    """Look at or prune the shared cache of job results (--cache DIR or $FLOW_CACHE)."""


@cache.command(context_settings=CONTEXT)
@_cache_option
def stats(root: str | None, _debug: bool) -> None:
    """Entries, total size, size by rule, and the oldest and newest use."""
    from ..run.timeline import size_text, when_text
    from .history import table

    s = _open(root).stats()
    say(f"cache    {root}")
    say(f"entries  {s.entries}")
    say(f"size     {size_text(s.bytes)}")
    if s.oldest_use is not None and s.newest_use is not None:
        say(f"used     {when_text(s.oldest_use)} (oldest) to {when_text(s.newest_use)} (newest)")
    if s.rules:
        say("")
        rows = [(rule, str(u.entries), size_text(u.bytes))
                for rule, u in sorted(s.rules.items(), key=lambda ru: (-ru[1].bytes, ru[0]))]
        for line in table(("RULE", "ENTRIES", "SIZE"), rows, right=(1, 2)):
            say(line)


@cache.command(context_settings=CONTEXT)
@click.option("--max-size", "max_size", type=Size(), required=True, metavar="SIZE",
              help="Remove the least recently used entries until the cache holds at most SIZE "
                   "(bytes, or 500M, 10G, 2GiB, 1.5T: powers of 1024).")
@_cache_option
def prune(max_size: int, root: str | None, _debug: bool) -> None:
    """Remove the least recently used entries down to a size, and what
    interrupted stores left behind."""
    from ..run.timeline import size_text

    removed, freed = _open(root).prune(max_size)
    say(f"flow: removed {removed} entr{'ies' if removed != 1 else 'y'}, freed {size_text(freed)}; "
        f"the cache holds at most {size_text(max_size)} now")


def _open(root: str | None):
    """The cache at ``root``; a ``UserError`` if none is given or it is not a directory."""
    from ..errors import UserError
    from ..run.shared_cache import SharedCache

    if not root:
        raise UserError("no cache directory given", "Pass --cache DIR, or set FLOW_CACHE to it.")
    if os.path.exists(root) and not os.path.isdir(root):
        raise UserError(f"--cache {root}: not a directory", "Give the cache's directory.")
    if not os.path.exists(root):
        say(f"flow: {root} does not exist yet: nothing is stored in it", err=True)
    return SharedCache(root)
