"""The errors flow shows its user, and the exit code of each.

Every one is a ``FlowError`` (defined in ``flow/__init__.py``, above the
layers, since the grammar raises one too): ``render()`` is the text the user
reads, ``exit_code`` flow's exit status. The CLI catches ``FlowError`` once,
shows ``render()`` and exits with ``exit_code``; ``flow watch`` catches it
around each build, says it and waits for the next save. No code outside these
classes decides an exit code.

    FlowError                exit 2 unless said; "flow: error: MESSAGE" and the hint
    ├── FlowfileError        (grammar) a mistake in a Flowfile, at file:line:col,
    │                        with the source line and a caret
    ├── UserError            a mistake on the command line, in the files, or in a
    │   │                    rule's use (at file:line:col when it has a position)
    │   ├── UsageError       an option or argument click refused, in click's words
    │   ├── LockHeld         another run holds this directory's lock
    │   ├── MissingInputError  an input that no rule makes and no file is
    │   ├── CycleError       rules that need each other's outputs
    │   ├── AmbiguousRuleError  two rules can make a file and nothing says which
    │   ├── SpecialFileError (hashing.py; an OSError too) a FIFO, socket or device
    │   │                    where a file was to be read
    │   └── FileAccessError  a file flow itself must read or write (permissions,
    │                        a full disk): the OSError, named
    ├── JobsFailed           exit 1: jobs failed; exit 2 when (also) a job could not
    │                        start, a mistake of the user's (a Flowfile, a file it names)
    ├── Interrupted          exit 128+signal: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
    ├── OutputClosed         exit 1, and nothing said: flow's reader went away
    │                        (`flow list | head`)
    └── InternalError        exit 1: a bug in flow (any other exception);
                             --debug shows its traceback

    Terminated               not a FlowError, and no user sees it: a BaseException
                             (like KeyboardInterrupt) that the SIGTERM/SIGHUP handler
                             raises in the main thread, so that flow unwinds as on
                             Ctrl-C; it ends as Interrupted.

What the end of a run says (jobs failed, stopped by a signal) is written by
``report.py``, with the summary of a run that succeeded.
"""

from __future__ import annotations

import signal

from flow import FlowError

__all__ = [
    "FlowError", "UserError", "UsageError", "LockHeld", "MissingInputError", "CycleError",
    "AmbiguousRuleError", "FileAccessError", "JobsFailed", "Interrupted", "OutputClosed",
    "InternalError", "Terminated",
]


class UserError(FlowError):
    """A mistake in the Flowfile, the command line or the files: exit 2."""

    def __init__(self, message: str, hint: str | None = None, pos=None):
        super().__init__(message, hint)
        self.pos = pos  # a Flowfile position (file, line, column) when there is one

    def render(self) -> str:
        if self.pos is not None:
            from flow.grammar import FlowfileError

            return FlowfileError.at(self.pos, self.message, self.hint).render()
        return super().render()


class UsageError(UserError):
    """A command line click refused (an unknown option, a bad value), shown as
    click shows it: the usage line, where to find help, and "Error: ..."."""

    @classmethod
    def of(cls, e) -> UsageError:
        """From a ``click.ClickException`` (``e.show`` writes its text)."""
        import io

        text = io.StringIO()
        e.show(file=text)
        return cls(text.getvalue().removesuffix("\n"))

    def render(self) -> str:
        return self.message


class LockHeld(UserError):
    """Another run holds the directory's lock."""


class MissingInputError(UserError):
    def __init__(self, message: str, hint: str | None = None, pos=None, path: str | None = None):
        super().__init__(message, hint, pos)
        self.path = path  # the file that is missing (flow watch waits for it)


class CycleError(UserError):
    pass


class AmbiguousRuleError(UserError):
    pass


class FileAccessError(UserError):
    """A file flow itself must read or write (its state store, a Flowfile's
    directory, an output's directory) refused it: permissions, a full disk."""

    @classmethod
    def of(cls, e: OSError) -> FileAccessError:
        where = f"{e.filename}: " if e.filename else ""
        hint = "Check the permissions of that file and its directory." if isinstance(e, PermissionError) else None
        error = cls(f"{where}{e.strerror or e}", hint)
        error.__cause__ = e
        return error


class JobsFailed(FlowError):
    """Jobs failed (exit 1), or could not start because of a mistake of the
    user's (exit 2). ``summary`` is the scheduler's account of the run."""

    def __init__(self, summary):
        super().__init__("jobs failed")
        self.args = (summary,)
        self.summary = summary

    @property
    def exit_code(self) -> int:
        return 2 if self.summary.user_errors else 1

    def render(self, watching: bool = False) -> str:
        """Which jobs failed, how many ran, and what to do next (under ``flow
        watch``, the next step is a save, not another command)."""
        from .commands.report import failed_text

        return failed_text(self.summary, watching)


class Interrupted(FlowError):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP stopped flow: exit 128 + the signal.
    ``finished``: the jobs that finished and are kept, when a run was under way."""

    def __init__(self, signum: int, finished: int | None = None):
        super().__init__(signal.Signals(signum).name)
        self.args = (signum, finished)
        self.signum = signum
        self.finished = finished

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def render(self) -> str:
        from .commands.report import stopped_text

        return stopped_text(self.signum, self.finished)


class OutputClosed(FlowError):
    """What read flow's output went away (``flow list | head``): nothing to
    say, to no one; exit 1."""

    exit_code = 1

    def render(self) -> str:
        return ""


class InternalError(FlowError):
    """A bug in flow: any exception that is not a FlowError. One line; the
    traceback with ``--debug``. Exit 1."""

    exit_code = 1

    @classmethod
    def of(cls, e: BaseException) -> InternalError:
        error = cls(f"{type(e).__name__}: {e}")
        error.__cause__ = e
        return error

    def render(self) -> str:
        return f"flow: internal error: {self.message} (run with --debug for details)"


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread by the CLI's signal handler;
    a BaseException like KeyboardInterrupt, so no ``except Exception`` swallows it."""

    def __init__(self, signum: int = 15):
        super().__init__(signum)
        self.signum = signum
