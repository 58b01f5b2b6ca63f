"""Errors the CLI turns into messages and exit codes (2: the user's Flowfile
or command line; 1: jobs failed; 130/143: interrupted)."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the Flowfile, the command line or the files: exit 2."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, pos=None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.pos = pos  # a Flowfile position (file, line, column) when there is one

    def __str__(self) -> str:
        return self.message + (f"\n{self.hint}" if self.hint else "")

    def render(self) -> str:
        if self.pos is not None:
            from flow.grammar import FlowfileError

            return FlowfileError.at(self.pos, self.message, self.hint).render()
        return f"flow: error: {self}"


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


class JobsFailed(Exception):
    """Jobs failed (exit 1), or could not run because of a mistake in the Flowfile (exit 2)."""

    @property
    def exit_code(self) -> int:
        return 2 if self.args[0].user_errors else 1


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread by the CLI's signal handler;
    a BaseException like KeyboardInterrupt, so no ``except Exception`` swallows it."""

    def __init__(self, signum: int = 15):
        super().__init__(signum)
        self.signum = signum


class Interrupted(Exception):
    def __init__(self, signum: int, finished: int):
        super().__init__(signum)
        self.signum = signum
        self.finished = finished

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
