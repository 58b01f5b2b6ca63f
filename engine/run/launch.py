"""How a shell job's process is started: a command of plain words runs as
its program directly, anything else through ``bash -euo pipefail -c``.

For a command that is one program with plain words, its input or output
perhaps redirected to a file (``rules.shell.direct_command``: ``cat
{input} > {output}``), bash would only start, set up its environment, open
those files and exec the program: flow does the same without bash, and
saves its start-up (about a millisecond a job, as make does for commands
without shell syntax). The program sees what it would under bash: its
argv[0] as written, found on the job's ``PATH``; its redirected files
opened as bash opens them, in order (new ones 0666 less the umask);
``PWD`` the working directory (kept when the inherited one names it, as
bash keeps a path through a symbolic link); ``SHLVL`` as inherited (0 when
unset); ``_`` the program's path; no ``OLDPWD`` that is not a directory.
Whatever bash alone would settle goes through bash: a program not found,
not executable or without a ``#!`` line (bash says so, or runs it as a
script), a file that cannot be opened; and every command when the
environment holds what bash acts on or rewrites: a ``BASH_ENV`` file to
run first (as module systems and conda set up), an exported function, or
one of the variables bash sets for itself (``_BASH_SETS``). ``PS1`` and
``PS2`` are dropped, as bash drops them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from flow.rules.shell import bash_argv, direct_command

Start = Callable[..., subprocess.Popen]
# Variables bash sets for itself, resets or acts on: present in the job's
# environment, bash would pass on another value, or do something first.
_BASH_SETS = ("BASH", "BASHOPTS", "BASH_VERSION", "BASH_XTRACEFD", "BASH_ARGV0", "SHELLOPTS",
              "IFS", "OPTIND", "OPTERR", "PS4", "POSIXLY_CORRECT")


class ShellLauncher:
    """Starts shell jobs in the environment ``env`` (None: flow's own)."""

    def __init__(self, env: dict[str, str] | None = None):
        base = dict(os.environ if env is None else env)
        self.env = env
        self.path = base.get("PATH", os.defpath)
        # What bash would change in the environment beyond PWD, SHLVL and _ :
        # then every command goes through bash (rare in an environment).
        self.bash_only = bool(base.get("BASH_ENV")) or any(name in base for name in _BASH_SETS) or any(
            name.startswith("BASH_FUNC_") for name in base)
        for name in ("PS1", "PS2"):  # (a non-interactive bash drops them: a venv's activate exports PS1)
            base.pop(name, None)
        base["PWD"] = _pwd(base.get("PWD"))
        base.setdefault("SHLVL", "0")
        if "OLDPWD" in base and not os.path.isdir(base["OLDPWD"]):
            del base["OLDPWD"]  # (as bash drops it)
        self.direct_env = base
        self.found: dict[str, str | None] = {}  # name -> where it was found on PATH (bash keeps such a table too)
        # Bash itself, found once: looking it up for each job would try every
        # directory of PATH before it, while flow waits for the exec.
        self.bash = shutil.which("bash", path=self.path)

    def start(self, command: str, **popen) -> subprocess.Popen:
        """The job's process, started with ``popen``'s arguments (an OSError
        when bash itself cannot be started)."""
        direct = direct_command(command)
        program = self.program(direct.argv[0]) if direct is not None else None
        if program is not None:
            streams = _opened(direct.redirects)
            if streams is not None:
                try:
                    return subprocess.Popen(direct.argv, executable=program, env={**self.direct_env, "_": program},
                                            **{**popen, **streams})
                except OSError:
                    pass  # not executable, no #! line, gone since: bash says what, or runs it as a script
                finally:
                    for fd in streams.values():
                        os.close(fd)
        return subprocess.Popen(bash_argv(command), executable=self.bash, env=self.env, **popen)

    def program(self, name: str) -> str | None:
        """Where bash would find ``name``; None where bash must decide."""
        if self.bash_only:
            return None
        if "/" in name:
            return name if os.path.isfile(name) else None
        if name not in self.found:  # (one found and gone since fails to start: bash then says what)
            self.found[name] = shutil.which(name, path=self.path)
        return self.found[name]


# How bash opens the file of each redirection (new files: 0666 less the umask).
_OPENS = {"<": os.O_RDONLY, ">": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, ">>": os.O_WRONLY | os.O_CREAT | os.O_APPEND}


def _opened(redirects: tuple[tuple[str, str], ...]) -> dict[str, int] | None:
    """The files of ``redirects`` opened as bash opens them, in order, as
    Popen's ``stdin`` and ``stdout``; None if one cannot be (those before
    it are opened, as under bash, which then says what is wrong)."""
    streams: dict[str, int] = {}
    for operator, path in redirects:
        try:
            fd = os.open(path, _OPENS[operator] | os.O_CLOEXEC, 0o666)
        except OSError:
            for opened in streams.values():
                os.close(opened)
            return None
        streams["stdin" if operator == "<" else "stdout"] = fd
    return streams


def _pwd(inherited: str | None) -> str:
    """The working directory as bash names it: the inherited ``PWD`` if it
    is an absolute path to it, else the path the system gives."""
    if inherited and os.path.isabs(inherited):
        try:
            if os.path.samestat(os.stat(inherited), os.stat(".")):
                return inherited
        except OSError:
            pass
    return os.getcwd()
