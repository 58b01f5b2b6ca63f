"""Removing and protecting outputs: the file operations the scheduler and
``flow clean`` share."""

from __future__ import annotations

import os
import shutil
import stat


def remove_output(path: str) -> None:
    """Remove a file, link or directory tree (a read-only one too); gone already is fine."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=_force_remove)
        elif os.path.lexists(path):
            os.unlink(path)
    except FileNotFoundError:
        pass


def remove_empty_parents(path: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Remove directories left empty by deleting ``path`` (as Snakemake does
    for temp files), up to one in ``keep``."""
    parent = os.path.dirname(path)
    while parent and parent not in keep:
        try:
            os.rmdir(parent)
        except OSError:
            return
        parent = os.path.dirname(parent)


def _force_remove(func, path, exc_info) -> None:
    os.chmod(os.path.dirname(path), stat.S_IRWXU)
    func(path)


def make_readonly(path: str) -> None:
    """protected(): no write permission for anyone, on a file or every file of a tree."""
    paths = [path]
    if os.path.isdir(path):
        for dirpath, _dirnames, filenames in os.walk(path):
            paths.extend(os.path.join(dirpath, f) for f in filenames)
    for p in paths:
        mode = os.stat(p).st_mode
        os.chmod(p, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
