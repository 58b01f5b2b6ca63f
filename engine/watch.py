"""``flow watch``: build, then build again whenever something the result
depends on changes, until Ctrl-C.

What is watched comes from the last build: the Flowfile, its includes and
config files, ``script:`` files, every source input (a file no rule makes),
and the directories ``glob_wildcards`` walked (a new file that matches joins
the next build). Files flow writes (outputs, logs, ``.flow/``, temporary
files) are never a reason to build. Changes are collected by watchdog in its
own thread, during builds too; a build starts once they have settled for
``debounce`` seconds. A build that fails (a Flowfile error, a missing input,
a failed job) is reported, and the watcher waits for the next change.
"""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass, field

from flow.grammar import FlowfileError

from .build import Build, RunOptions, build
from .errors import JobsFailed, MissingInputError, UserError


@dataclass
class Watched:
    """What a change must touch to matter, as absolute paths."""

    files: set[str] = field(default_factory=set)
    globs: list[tuple[str, object]] = field(default_factory=list)  # (directory, regex of its relative paths)
    ignored: set[str] = field(default_factory=set)  # outputs and logs: flow's own writes
    ignored_dirs: set[str] = field(default_factory=set)  # directory() outputs, .flow/

    def matters(self, path: str) -> bool:
        path = os.path.abspath(path)
        name = os.path.basename(path)
        if path in self.ignored or name.endswith(".flow-tmp") or ".flow-tmp." in name:
            return False
        if any(path == d or path.startswith(d + os.sep) for d in self.ignored_dirs):
            return False
        if path in self.files:
            return True
        for base, regex in self.globs:
            if path.startswith(base + os.sep):
                rel = os.path.relpath(path, os.getcwd())
                if regex.match(rel) or regex.match(os.path.relpath(path, base)):
                    return True
        return False

    def directories(self) -> dict[str, bool]:
        """Directories to watch, and whether recursively (an existing one
        stands in for a file's directory that does not exist yet)."""
        out: dict[str, bool] = {}
        for f in self.files:
            out.setdefault(_existing(os.path.dirname(f)), False)
        for base, _ in self.globs:
            out[_existing(base)] = True
        return out


def _existing(directory: str) -> str:
    while directory and not os.path.isdir(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory or os.getcwd()


def watched_paths(result: Build, error: Exception | None) -> Watched:
    """What the next change must touch, from what the last build found."""
    w = Watched()
    here = os.getcwd()
    w.ignored_dirs.add(os.path.join(here, ".flow"))
    if isinstance(error, FlowfileError) and error.file:
        w.files.add(os.path.abspath(error.file))
    if isinstance(error, MissingInputError) and error.path:
        w.files.add(os.path.abspath(error.path))
    if result.wf is None:
        return w
    wf = result.wf
    w.files.update(os.path.abspath(s) for s in wf.sources)
    for rule in wf.rules.values():
        action = rule.action
        if action is not None and action.kind == "script" and "{" not in action.path:
            w.files.add(os.path.abspath(os.path.join(action.base, action.path)))
    w.globs = [(os.path.abspath(base), regex) for base, regex in wf.env.globbed]
    if result.dag is None:
        return w
    jobs = result.dag.reachable(result.jobs) if result.jobs else []
    for job in jobs:
        for i, out in enumerate(job.outputs):
            (w.ignored_dirs if "directory" in job.output_flags(i) else w.ignored).add(os.path.abspath(out))
        w.ignored.update(os.path.abspath(p) for p in job.logs)
        if job.benchmark:
            w.ignored.add(os.path.abspath(job.benchmark))
    for job in jobs:
        for path in job.inputs:
            if result.dag.producer.get(path) is None:
                w.files.add(os.path.abspath(path))
    return w


class _Collector:
    """watchdog's handler: every path an event names goes into a queue."""

    def __init__(self, q: queue.SimpleQueue):
        self.q = q

    def dispatch(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                self.q.put(os.fsdecode(path))


class Watcher:
    def __init__(self, options: RunOptions, echo, debounce: float = 0.2, clear: bool = False):
        self.options = options
        self.debounce = debounce
        self.clear = clear
        self.echo = echo
        self.home = os.getcwd()
        self.events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.handler = _Collector(self.events)
        self.watches: dict[tuple[str, bool], object] = {}  # (directory, recursive) -> watchdog's watch

    def run(self) -> None:
        """Build, then rebuild on changes; returns only by an exception
        (KeyboardInterrupt, Terminated) that the caller turns into an exit."""
        import logging

        from watchdog.observers import Observer

        # watchdog logs a harmless complaint when a watch is dropped while its
        # thread winds down; flow's own messages say what matters.
        logging.getLogger("watchdog").setLevel(logging.CRITICAL)
        observer = self.observer = Observer()
        observer.start()
        try:
            changed: list[str] = []
            while True:
                started = time.time_ns()
                watched = self._build(changed)
                self._schedule(observer, watched)
                self._changed_since(started, watched)
                self.echo(f"flow watch: waiting for changes ({len(watched.files)} files, "
                          f"{len(watched.globs)} globbed directories; Ctrl-C to stop)", err=True)
                changed = self._wait(watched)
        finally:
            observer.stop()
            observer.join(timeout=2)

    def _build(self, changed: list[str]) -> Watched:
        if self.clear:
            self.echo("\x1b[2J\x1b[H", nl=False, err=True, color=True)  # (where the builds report)
        if changed:
            names = ", ".join(os.path.relpath(p, self.home) for p in changed[:3])
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            self.echo(f"flow watch: {names}{more} changed, building", err=True)
        os.chdir(self.home)  # (a workdir: in the Flowfile moves it)
        result, error = Build(), None
        try:
            build(self.options, result, freeze=False)
        except (FlowfileError, UserError, JobsFailed, OSError) as e:
            error = e
            from .cli import describe_error

            self.echo(describe_error(e)[0], err=True)
        return watched_paths(result, error)

    def _schedule(self, observer, watched: Watched) -> None:
        """Watch the directories the next change may come from; the ones
        watched already stay watched, so no change falls between two builds."""
        wanted = watched.directories()
        for key in [k for k in self.watches if wanted.get(k[0]) != k[1]]:
            observer.unschedule(self.watches.pop(key))
        for directory, recursive in wanted.items():
            if (directory, recursive) in self.watches:
                continue
            try:
                self.watches[(directory, recursive)] = observer.schedule(self.handler, directory, recursive=recursive)
            except OSError as e:
                self.echo(f"flow watch: cannot watch {directory}: {e.strerror}", err=True)

    def _new_directory(self, path: str, watched: Watched) -> None:
        """A directory a watched file will be in has appeared: watch it (and
        take the file as changed if it is there already)."""
        path = os.path.abspath(path)
        if not os.path.isdir(path) or not any(f.startswith(path + os.sep) for f in watched.files):
            return
        before = set(self.watches)
        self._schedule(self.observer, watched)
        new = {d for d, _ in set(self.watches) - before}
        for f in watched.files:
            if os.path.dirname(f) in new and os.path.exists(f):
                self.events.put(f)

    def _changed_since(self, started_ns: int, watched: Watched) -> None:
        """Files changed while the build ran, in a directory not watched
        then: as if their events had come."""
        for path in watched.files:
            try:
                if os.stat(path).st_mtime_ns > started_ns:
                    self.events.put(path)
            except OSError:
                pass

    def _wait(self, watched: Watched) -> list[str]:
        """The paths that matter of the next changes, once they have settled."""
        changed: dict[str, None] = {}
        while not changed:
            try:
                path = self.events.get(timeout=0.5)  # (a blocking get would hold up Ctrl-C)
            except queue.Empty:
                continue
            if watched.matters(path):
                changed[os.path.abspath(path)] = None
            else:
                self._new_directory(path, watched)
        settle = time.monotonic() + self.debounce
        while True:
            try:
                path = self.events.get(timeout=max(0.0, settle - time.monotonic()))
            except queue.Empty:
                return list(changed)
            if watched.matters(path):
                changed[os.path.abspath(path)] = None
                settle = time.monotonic() + self.debounce
