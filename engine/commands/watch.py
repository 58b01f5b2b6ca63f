"""``flow watch``: build, then build again whenever something the result
depends on changes, until Ctrl-C.

What is watched comes from the last build: the Flowfile, its includes and
config files, ``script:`` files, every source input (a file no rule makes;
the files under a source directory; the target of a symbolic link), and the
directories ``glob_wildcards`` walked (a new file that matches joins the
next build). What a failed build could not know (its Flowfile did not load,
a source was deleted) stays watched as the last build knew it. Files flow
writes (outputs, logs, ``.flow/``, temporary files) are never a reason to
build. Changes are collected by watchdog in its own threads, during builds
too; a build starts once they have settled for ``debounce`` seconds. A build
that fails is reported, and the watcher waits for the next change.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import time
from dataclasses import dataclass, field

from flow.grammar import FlowfileError

from flow import FlowError

from ..errors import FileAccessError, Interrupted, LockHeld, MissingInputError
from ..run.lock import RunLock
from .build import Build, RunOptions, build
from .report import counted, describe_error, one_line, printable


@dataclass
class Watched:
    """What a change must touch to matter, as absolute paths."""

    files: set[str] = field(default_factory=set)
    trees: set[str] = field(default_factory=set)  # source directories: anything under them
    globs: list[tuple[str, object]] = field(default_factory=list)  # (directory, regex of its paths)
    ignored: set[str] = field(default_factory=set)  # outputs and logs: flow's own writes
    ignored_dirs: set[str] = field(default_factory=set)  # directory() outputs, .flow/

    def matters(self, path: str) -> bool:
        path = os.path.abspath(path)
        name = os.path.basename(path)
        if path in self.ignored or name.endswith(".flow-tmp") or ".flow-tmp." in name:
            return False
        if any(_under(path, d) for d in self.ignored_dirs):
            return False
        if path in self.files or any(_under(path, t) for t in self.trees):
            return True
        if not os.path.exists(path) and self.holds(path):  # a deleted directory
            return True
        for base, regex in self.globs:
            if _under(path, base) and path != base:
                if regex.match(os.path.relpath(path, os.getcwd())) or regex.match(os.path.relpath(path, base)):
                    return True
        return False

    def holds(self, directory: str) -> bool:
        wanted = [*self.files, *self.trees, *(base for base, _ in self.globs)]
        return any(_under(w, directory) and w != directory for w in wanted)

    def directories(self) -> dict[str, bool]:
        """Directories to watch, and whether recursively (an existing one
        stands in for a directory that does not exist yet; one inside a
        recursively watched directory needs no watch of its own)."""
        recursive = {_existing(d) for d in self.trees} | {_existing(b) for b, _ in self.globs}
        out = {d: True for d in recursive}
        for f in self.files:
            d = _existing(os.path.dirname(f))
            if not any(_under(d, r) for r in recursive):
                out.setdefault(d, False)
        return out

    def merge(self, other: Watched) -> None:
        self.files |= other.files
        self.trees |= other.trees
        self.globs += [g for g in other.globs if g not in self.globs]


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


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
    w.ignored_dirs.add(os.path.join(os.getcwd(), ".flow"))
    if isinstance(error, FlowfileError) and error.file:
        w.files.add(os.path.abspath(error.file))
    if isinstance(error, MissingInputError) and error.path:
        w.files.add(os.path.abspath(error.path))
    if result.wf is None:
        return w
    wf = result.wf
    w.files.update(os.path.abspath(s) for s in wf.sources)
    for rule in wf.rules.values():
        if rule.action is not None:
            w.files.update(os.path.abspath(p) for p in rule.action.source_files())
    w.globs = [(os.path.abspath(g.base), g.regex) for g in wf.env.globbed]
    if result.dag is None:
        return w
    jobs = result.dag.reachable(result.jobs) if result.jobs else []
    for job in jobs:
        dirs = {out for i, out in enumerate(job.outputs) if "directory" in job.output_flags(i)}
        for path in job.written:
            (w.ignored_dirs if path in dirs else w.ignored).add(os.path.abspath(path))
    for job in jobs:
        for path in job.inputs:
            if result.dag.producer.get(path) is None:
                full = os.path.abspath(path)
                (w.trees if os.path.isdir(full) else w.files).add(full)
                if os.path.islink(full):  # an edit of the file it points to
                    (w.trees if os.path.isdir(full) else w.files).add(os.path.realpath(full))
    return w


class _Collector:
    """watchdog's handler: every path an event names goes into a queue."""

    def __init__(self, q: queue.SimpleQueue):
        self.q = q
        self.deleted_dirs: queue.SimpleQueue[str] = queue.SimpleQueue()  # (deleting a directory ends its watch)

    def dispatch(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads
        if event.event_type == "deleted" and event.is_directory:
            self.deleted_dirs.put(os.path.abspath(os.fsdecode(event.src_path)))
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
        # (directory, recursive) -> (watchdog's watch, the directory's inode when it was watched)
        self.watches: dict[tuple[str, bool], tuple[object, int]] = {}
        self.unwatchable: set[str] = set()
        self.last = Watched()

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
            with _clusters_kept(self.options):
                self._loop()
        finally:
            observer.stop()
            observer.join(timeout=2)

    def _loop(self) -> None:
        changed: list[str] = []
        while True:
            started = time.time_ns()
            watched = self._build(changed)
            self._changed_since(started, watched, self._schedule(watched))
            dirs = counted(len(watched.globs) + len(watched.trees), "directory", "directories")
            self._say(f"flow watch: waiting for changes ({counted(len(watched.files), 'file')}, "
                      f"{dirs}; Ctrl-C to stop)")
            changed = self._wait(watched)

    def _say(self, text: str) -> None:
        """A line of the watcher's own on stderr, escaped (``printable``): the
        file names in it may hold characters a terminal would act on."""
        self.echo(printable(text), err=True)

    def _build(self, changed: list[str]) -> Watched:
        if self.clear:
            self.echo("\x1b[2J\x1b[H", nl=False, err=True, color=True)  # (where the builds report)
        if changed:
            names = ", ".join(one_line(os.path.relpath(p, self.home)) for p in changed[:3])
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            self._say(f"flow watch: {names}{more} changed, building")
        while True:
            os.chdir(self.home)  # (a workdir: in the Flowfile moves it)
            result, error = Build(), None
            try:
                build(self.options, result, freeze=False, needs_graph=True)
            except LockHeld as e:  # another run: build once it has ended
                self._say(f"flow watch: {e.message}; building when it ends")
                RunLock(".flow").wait_until_free()
                continue
            except Interrupted:  # Ctrl-C, SIGTERM during the build: the watcher stops too
                raise
            except FlowError as e:  # a mistake, failed jobs: said; the next save builds again
                error = e
            except OSError as e:  # a file flow itself must read or write
                error = FileAccessError.of(e)
            if error is not None:
                self._say(describe_error(error, watching=True))
            break
        watched = watched_paths(result, error)
        if result.wf is None:  # the Flowfile did not load: what the last build used still counts
            watched.merge(self.last)
        watched.files |= {f for f in self.last.files if not os.path.exists(f)}  # deleted sources may return
        self.last = watched
        return watched

    def _schedule(self, watched: Watched) -> list[tuple[str, bool]]:
        """Watch the directories the next change may come from. A directory
        watched already stays watched, so no change falls between two builds,
        unless it was deleted and made again (its watch ended with it). The
        watches made now: what changed in them before is not in their events."""
        wanted = watched.directories()
        gone = set()
        while not self.handler.deleted_dirs.empty():
            gone.add(self.handler.deleted_dirs.get())
        for key, (watch, inode) in list(self.watches.items()):
            if wanted.get(key[0]) != key[1] or _inode(key[0]) != inode or key[0] in gone:
                del self.watches[key]
                try:
                    self.observer.unschedule(watch)
                except (KeyError, OSError):  # its directory is gone, and its watch with it
                    pass
        made = []
        for directory, recursive in wanted.items():
            if (directory, recursive) in self.watches:
                continue
            try:
                watch = self.observer.schedule(self.handler, directory, recursive=recursive)
                self.watches[(directory, recursive)] = (watch, _inode(directory))
                self.unwatchable.discard(directory)
                made.append((directory, recursive))
            except OSError as e:
                if directory not in self.unwatchable:
                    self.unwatchable.add(directory)
                    hint = (" (the system's limit of watches: raise fs.inotify.max_user_watches)"
                            if e.errno == errno.ENOSPC else "")
                    self._say(f"flow watch: cannot watch {one_line(directory)}: {e.strerror}{hint}; "
                              "changes there go unnoticed")
        return made

    def _changed_since(self, started_ns: int, watched: Watched, made: list[tuple[str, bool]]) -> None:
        """Files changed while the build ran, in a directory not watched
        then (a watched file's, or any in a directory watched only now, such
        as one deleted and made again during the build): as if their events
        had come (a time in the future is not a change)."""
        now = time.time_ns()
        paths = set(watched.files)
        for directory, recursive in made:
            paths.update(_files_in(directory, recursive))
        for path in paths:
            try:
                if started_ns < os.stat(path).st_mtime_ns <= now:
                    self.events.put(path)
            except OSError:
                pass

    def _new_directory(self, path: str, watched: Watched) -> None:
        """A directory something watched will be in has appeared (perhaps one
        deleted and made again): watch it, and take what is in it already as
        changed, since its events came before the watch."""
        path = os.path.abspath(path)
        if not os.path.isdir(path) or not (watched.holds(path) or path in watched.trees
                                           or any(path == base for base, _ in watched.globs)):
            return
        for directory, recursive in self._schedule(watched):
            for f in _files_in(directory, recursive):
                self.events.put(f)

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


def _files_in(directory: str, recursive: bool) -> list[str]:
    if recursive:
        return [os.path.join(d, f) for d, _, files in os.walk(directory) for f in files]
    try:
        return [e.path for e in os.scandir(directory) if not e.is_dir()]
    except OSError:  # gone again
        return []


def _inode(directory: str) -> int:
    try:
        return os.stat(directory).st_ino
    except OSError:
        return -1


def _clusters_kept(options):
    """The local Dask cluster of ``--executor dask`` kept from one build to
    the next (it takes seconds to start), and closed when watching ends."""
    if options.executor != "dask":
        return contextlib.nullcontext()
    from ..run.cluster import local_clusters_kept

    return local_clusters_kept()
