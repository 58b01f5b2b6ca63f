"""``run:`` blocks and ``script:`` files: Python that runs inside a job.

Both run in a long-lived worker process (``rules.worker``), never in the
engine's process, so a job cannot disturb the scheduler and no interpreter
starts per job. Their code sees ``input``, ``output``, ``params``, ...,
``shell()`` and the modules ``os`` and ``sys``; scripts see the same as attributes of ``snakemake``/``flow``.
"""

from __future__ import annotations

import _string
import ast
import builtins
import json
import os
import string
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import xxhash

from .base import ActionBase, ActionError, JobContext, JobFailed, Prepared
from .shell import bash_argv, format_command

_OWN_DIR = str(Path(__file__).resolve().parent.parent)


class RunAction(ActionBase):
    """A ``run:`` block. Its key holds its source and the values of the
    Flowfile globals and ``config`` entries it reads (FLOWFILE.md), so
    changing ``FACTOR = 2`` or ``--config factor=3`` reruns the jobs that use
    them, and nothing else."""

    kind = "run"
    what = "run: block"
    takes = "block of Python code"

    def __init__(self, code: str, file: str, line: int):
        self.code, self.file, self.line = code, file, line
        self._reads: _Reads | None = None  # what the block reads: parsed once, not once per job
        self._keyed: tuple[dict, dict, str] | None = None  # (globals, config, signature) last used
        self.reads: tuple[str, ...] = ()  # what its key holds, e.g. ("FACTOR", "config['factor']")

    @classmethod
    def from_directive(cls, text: str, file: str, line: int) -> RunAction:
        """The block's source and where it starts, for its tracebacks' line numbers."""
        return cls(text, file, line)

    def prepare(self, ctx: JobContext) -> Prepared:
        return self.prepared(self._signature(ctx), (self.code, self.file, self.line))

    @staticmethod
    def execute(payload: tuple[str, str, int], ctx: JobContext) -> None:
        run_block(payload, ctx)

    def _signature(self, ctx: JobContext) -> str:
        """The source, then the values it reads. Globals and config are the
        same for every job of a run, so this is worked out once per run."""
        keyed = self._keyed
        if keyed is not None and keyed[0] is ctx.globals and keyed[1] is ctx.config:
            return keyed[2]
        if self._reads is None:
            self._reads = _reads(self.code, frozenset(ctx.format_namespace()) | _WORKER_NAMES)
        values = dict(self._reads.values(ctx.globals, ctx.config))
        self.reads = tuple(values)
        # A block that reads nothing keeps its source as its key; NUL never occurs in source.
        text = "".join(f"\0{label}" if value is _ABSENT else f"\0{label}={_stable(value)}"
                       for label, value in values.items())
        self._keyed = (ctx.globals, ctx.config, self.code + text)
        return self._keyed[2]


_WORKER_NAMES = frozenset({"shell", "snakemake", "flow"})  # bound by execute() over any global
_DYNAMIC = frozenset({"globals", "locals", "vars", "eval", "exec"})  # may read any name
_ABSENT = object()  # a config entry the block asks for that is not there


@dataclass(frozen=True)
class _Reads:
    """The Flowfile names and config entries a block may read."""

    names: frozenset[str]
    config_keys: tuple[Any, ...]
    whole_config: bool
    every_global: bool

    def values(self, globals_: dict, config: dict) -> Iterator[tuple[str, Any]]:
        names = globals_.keys() if self.every_global else self.names & globals_.keys()
        for name in sorted(names):
            yield name, globals_[name]
        if self.whole_config:
            yield "config", config
            return
        for key in self.config_keys:
            yield f"config[{key!r}]", config.get(key, _ABSENT)


def _reads(code: str, bound: frozenset[str]) -> _Reads:
    """What ``code`` reads, by looking at it: names it loads (in nested
    functions and comprehensions too), fields of format strings it holds
    (``shell("echo {FACTOR}")``), and ``config[...]``/``config.get(...)`` with
    constant keys. Any other use of ``config`` reads all of it. Names in
    ``bound`` are the job's own and never globals."""
    try:
        tree = ast.parse(code)
    except SyntaxError:  # the job fails when it runs, and says why
        return _Reads(frozenset(), (), False, False)
    names: set[str] = set()
    keys: list[Any] = []
    keyed: set[int] = set()  # config names read with a constant key
    whole = False
    for node in ast.walk(tree):  # breadth first: a subscript comes before its config name
        key_of = _constant_config_key(node)
        if key_of is not None:
            keyed.add(id(key_of[0]))
            keys.append(key_of[1])
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id != "config":
                names.add(node.id)
            elif id(node) not in keyed:
                whole = True
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "{" in node.value:
            whole |= _template_reads(node.value, names, keys)
    every = bool(names & _DYNAMIC)
    whole |= every
    return _Reads(frozenset(names - bound), () if whole else tuple(dict.fromkeys(keys)), whole, every)


def _constant_config_key(node: ast.AST) -> tuple[ast.Name, Any] | None:
    """For ``config["k"]`` and ``config.get("k", ...)``: the name ``config`` and ``"k"``."""
    if isinstance(node, ast.Subscript):
        target, key = node.value, node.slice
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr == "get" and node.args):
        target, key = node.func.value, node.args[0]
    else:
        return None
    if isinstance(target, ast.Name) and target.id == "config" and isinstance(key, ast.Constant):
        return target, key.value
    return None


def _template_reads(text: str, names: set[str], keys: list[Any]) -> bool:
    """Add the names and config keys a format string uses (the block may hand
    it to ``shell()``, which formats it with the globals); True if it formats
    ``config`` as a whole."""
    whole = False
    try:
        for _, field, _, _ in string.Formatter().parse(text):
            if not field:
                continue
            first, rest = _string.formatter_field_name_split(field)
            if first != "config":
                names.add(str(first))
                continue
            step = next(rest, None)
            if step is not None and not step[0]:
                keys.append(step[1])
            else:
                whole = True
    except ValueError:  # not a format string
        pass
    return whole


def _stable(value: Any) -> str:
    """``value`` as text that is the same in every run for the same value:
    sorted JSON; sets sorted; what JSON cannot hold, by its repr."""
    try:
        return json.dumps(value, sort_keys=True, default=_unjson, ensure_ascii=False)
    except (TypeError, ValueError):  # keys of mixed types, a circular value
        return repr(value)


def _unjson(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


class ScriptAction(ActionBase):
    """A ``script:`` file of Python, keyed by its contents."""

    kind = "script"
    what = "script"
    takes = "path (a string)"

    def __init__(self, path: str, base: str = "."):
        """``path`` as written in the Flowfile, relative to ``base``, its directory."""
        self.path = path
        self.base = base
        self._digests: dict[str, str] = {}  # a script is read once per run, not once per job

    @classmethod
    def from_directive(cls, text: str, file: str, line: int) -> ScriptAction:
        """A script's path is relative to the Flowfile that names it."""
        return cls(text, os.path.dirname(file))

    def source_files(self) -> tuple[str, ...]:
        """The script, unless its name is filled per job (then each job's key holds it)."""
        return () if "{" in self.path else (os.path.join(self.base, self.path),)

    @staticmethod
    def execute(payload: str, ctx: JobContext) -> None:
        run_script(payload, ctx)

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
        return self.prepared(f"script {written} {digest}", path, sources=((path, digest),))


def make_shell(ctx: JobContext):
    """``shell("cmd {input}")`` inside Python jobs: the caller's local names are
    usable in the command, as in Snakemake."""

    def shell(command: str, read: bool = False, **kwargs) -> str | None:
        """Run the command; with ``read=True`` return what it printed (as Snakemake's)."""
        caller = sys._getframe(1).f_locals
        namespace = {**caller, **ctx.format_namespace(), **kwargs}
        cmd = format_command(command, namespace)
        proc = subprocess.run(bash_argv(cmd), stdout=subprocess.PIPE if read else None)
        if proc.returncode != 0:
            raise JobFailed(f"shell command exited with status {proc.returncode}: {cmd}")
        return proc.stdout.decode(errors="replace") if read else None

    return shell


@lru_cache(maxsize=256)
def _compile_run(code: str, file: str, line: int):
    # Leading newlines put the block at its own line numbers in tracebacks.
    return compile("\n" * (line - 1) + code, file, "exec")


def _job_names(ctx: JobContext) -> dict[str, Any]:
    """What a job's Python sees: ``os`` and ``sys`` unimported (Snakemake's
    namespace has them, and Snakefiles' run: blocks rely on it), the
    Flowfile's globals, then the job's own names."""
    return {
        "__builtins__": builtins,
        "os": os,
        "sys": sys,
        **ctx.globals,
        **ctx.format_namespace(),
        "shell": make_shell(ctx),
        "snakemake": ctx,
        "flow": ctx,
    }


def run_block(payload: tuple[str, str, int], ctx: JobContext) -> None:
    """Run a ``run:`` block in this process (the worker)."""
    code, file, line = payload
    _importable(os.path.dirname(os.path.abspath(file)))
    names = _job_names(ctx)
    names["__name__"] = "__flow_run__"
    exec(_compile_run(code, file, line), names)


def run_script(path: str, ctx: JobContext) -> None:
    """Run a ``script:`` file in this process (the worker), as its own ``__main__``."""
    source = Path(path).read_text(encoding="utf-8")
    _importable(os.path.dirname(os.path.abspath(path)))
    names = _job_names(ctx)
    names["__name__"] = "__main__"
    names["__file__"] = names["__real_file__"] = os.path.abspath(path)  # (Snakemake's name too)
    exec(compile(source, path, "exec"), names)


def _importable(directory: str) -> None:
    """Modules beside the Flowfile (for run:) or the script can be imported,
    as Snakemake puts the Snakefile's directory first on ``sys.path``."""
    if directory not in sys.path:
        sys.path.insert(0, directory)


def user_traceback(exc: BaseException) -> str:
    """The traceback of the user's code only: flow's own frames are noise to them."""
    if isinstance(exc, JobFailed):
        return str(exc)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_OWN_DIR)]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()
