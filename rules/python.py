"""``run:`` blocks and ``script:`` files: Python that runs inside a job.

Both run in a long-lived worker process (``rules.worker``), never in the
engine's process, so a job cannot disturb the scheduler and no interpreter
starts per job. Their code sees ``input``, ``output``, ``params``, ... and
``shell()``; scripts see the same as attributes of ``snakemake``/``flow``.
"""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import traceback
from functools import lru_cache
from pathlib import Path

import xxhash

from .base import ActionError, JobContext, JobFailed, Prepared
from .shell import bash_argv, format_command

_OWN_DIR = str(Path(__file__).resolve().parent.parent)


class RunAction:
    kind = "run"

    def __init__(self, code: str, file: str, line: int):
        self.code, self.file, self.line = code, file, line

    def prepare(self, ctx: JobContext) -> Prepared:
        return Prepared("run", self.code, (self.code, self.file, self.line))


class ScriptAction:
    kind = "script"

    def __init__(self, path: str, base: str = "."):
        """``path`` as written in the Flowfile, relative to ``base``, its directory."""
        self.path = path
        self.base = base
        self._digests: dict[str, str] = {}  # a script is read once per run, not once per job

    def prepare(self, ctx: JobContext) -> Prepared:
        written = format_command(self.path, ctx.format_namespace(), quote=False)
        if not written.endswith(".py"):
            raise ActionError(f"script {written!r}: flow runs Python scripts (.py) only")
        path = os.path.relpath(os.path.join(self.base, written))
        digest = self._digests.get(path)
        if digest is None:
            try:
                digest = xxhash.xxh3_128_hexdigest(Path(path).read_bytes())
            except OSError as e:
                raise ActionError(f"cannot read script {path}: {e.strerror}") from None
            self._digests[path] = digest
        # the key names the script as written, so moving the project reruns nothing
        return Prepared("script", f"script {written} {digest}", path)


def make_shell(ctx: JobContext):
    """``shell("cmd {input}")`` inside Python jobs: the caller's local names are
    usable in the command, as in Snakemake."""

    def shell(command: str, **kwargs) -> None:
        caller = sys._getframe(1).f_locals
        namespace = {**caller, **ctx.format_namespace(), **kwargs}
        cmd = format_command(command, namespace)
        proc = subprocess.run(bash_argv(cmd))
        if proc.returncode != 0:
            raise JobFailed(f"shell command exited with status {proc.returncode}: {cmd}")

    return shell


@lru_cache(maxsize=256)
def _compile_run(code: str, file: str, line: int):
    # Leading newlines put the block at its own line numbers in tracebacks.
    return compile("\n" * (line - 1) + code, file, "exec")


def execute(kind: str, payload, ctx: JobContext) -> None:
    """Run one Python job in this process (the worker)."""
    names = {
        "__builtins__": builtins,
        **ctx.globals,
        **ctx.format_namespace(),
        "shell": make_shell(ctx),
        "snakemake": ctx,
        "flow": ctx,
    }
    if kind == "run":
        code, file, line = payload
        names["__name__"] = "__flow_run__"
        exec(_compile_run(code, file, line), names)
    elif kind == "script":
        path = payload
        source = Path(path).read_text(encoding="utf-8")
        names["__name__"] = "__main__"
        names["__file__"] = os.path.abspath(path)
        exec(compile(source, path, "exec"), names)
    else:  # pragma: no cover - the engine only sends kinds it knows
        raise ActionError(f"unknown action kind {kind}")


def user_traceback(exc: BaseException) -> str:
    """The traceback of the user's code only: flow's own frames are noise to them."""
    if isinstance(exc, JobFailed):
        return str(exc)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_OWN_DIR)]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()
