"""``flow clean``: remove outputs flow recorded, and only those.

A recorded output is removed only if it is still what flow made (same
content hash): a file the user replaced since is kept. Symbolic links are
removed as links, never followed; protected() outputs stay unless forced."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from ..decide.hashing import Hasher
from ..decide.state import State
from ..run.files import remove_empty_parents, remove_output
from .report import one_line


def clean_outputs(dry_run: bool, force: bool, echo: Callable[[str], None]) -> int:
    """Remove (or, dry, name) what flow recorded; each path is shown on one
    line, escaped (``one_line``): a recorded name may hold any character."""
    if not os.path.exists(os.path.join(".flow", "state.db")):
        echo("flow: nothing to clean (no .flow/state.db here)")
        return 0
    state = State(".flow", readonly=dry_run)
    hasher = Hasher(state.files)
    root = os.path.realpath(os.getcwd())
    removed: list[str] = []
    forgotten: list[str] = []
    for path, rec in sorted(state.outputs.items()):
        if not os.path.lexists(path):
            forgotten.append(path)
            continue
        shown = one_line(path)
        real_parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        if not (real_parent == root or real_parent.startswith(root + os.sep)):
            echo(f"kept {shown}: it lies outside {one_line(root)}")
            continue
        try:
            changed = hasher.digest(path) != rec.hash
        except OSError:  # a symbolic link that leads nowhere, an unreadable file
            changed = True
        if changed:
            echo(f"kept {shown}: it changed since flow made it")
            continue
        if not os.path.islink(path):
            if not force and not os.stat(path).st_mode & stat.S_IWUSR:
                echo(f"kept {shown}: protected (use --force to remove it)")
                continue
        if dry_run:
            echo(f"would remove {shown}")
        else:
            remove_output(path)
            remove_empty_parents(path)
            echo(f"removed {shown}")
        removed.append(path)
    if not dry_run:
        state.forget_outputs(removed + forgotten)
        state.save_stats(hasher.take_learned())
    verb = "would remove" if dry_run else "removed"
    echo(f"flow: {verb} {len(removed)} output{'s' * (len(removed) != 1)}")
    return len(removed)
