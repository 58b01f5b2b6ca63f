"""``flow lineage FILE``: what FILE derives from, as flow recorded it (the
jobs that made it and its inputs, their commands, the source files, each
with its recorded hash and when it was made); ``--downstream``: what derives
from FILE. As text, a tree (short hashes, names escaped for the terminal), or
as JSON (full hashes). The walk itself is ``decide/lineage.py``'s; here it is
shown, and a command the store does not hold is worked out from the Flowfile
for a job that is still in its graph."""

from __future__ import annotations

import datetime
import gc
import json
import os
from collections.abc import Callable, Iterator

from flow import FlowError

from ..decide.lineage import (
    CHANGED,
    MISSING,
    OK,
    FileEntry,
    InputEntry,
    JobEntry,
    JobRecords,
    Lineage,
    NotRecorded,
)
from ..decide.state import State
from ..errors import UserError
from ..run.stream import text_safe
from .report import one_line

SHORT = 12  # hex digits of a hash shown as text
INDENTED_JOBS = 10_000  # JSON of more jobs is written without indents
MAX_INDENT = 24  # levels; a deeper line is indented no further and says its depth


def show_lineage(name: str, downstream: bool, as_json: bool, workflow, echo: Callable[[str], None],
                 warn: Callable[[str], None]) -> None:
    """Walk the records from ``name`` and show the lineage with ``echo``
    (lines of flow's own, escaped by it); ``workflow``, the loaded Flowfile
    or None, gives the commands the store does not hold."""
    path = target_path(name)
    if not os.path.isfile(os.path.join(".flow", "state.db")):
        raise UserError(f"flow has no record of {one_line(name)}: nothing is recorded here "
                        f"(no .flow/state.db in {one_line(os.getcwd())})",
                        f"Run `flow run {one_line(name)}` first: `flow lineage` reads what flow "
                        "recorded when it ran the jobs.")
    state = State(".flow", readonly=True)
    for text in state.warnings:
        warn(text)
    # The cyclic garbage collector would walk the entries again and again while
    # they grow (as it would the job graph: see build.py): a third of the time.
    gc.disable()
    try:
        lineage = _walk(JobRecords(state), path, name, downstream)
        if workflow is not None:
            jobs = [*lineage.jobs.values(), *([lineage.maker] if lineage.downstream and lineage.maker else [])]
            commands_from_flowfile([j for j in jobs if j.command is None], workflow)
        if as_json:  # (indented for people unless huge: the indenting encoder is Python, five times slower)
            echo(json.dumps(text_safe(to_json(lineage)), indent=2 if len(lineage.jobs) <= INDENTED_JOBS else None))
            return
        for line in text_lines(lineage):
            echo(line)
    finally:
        gc.enable()
        state.close()
    warn(summary(lineage))


def _walk(records: JobRecords, path: str, name: str, downstream: bool) -> Lineage:
    try:
        return records.downstream(path) if downstream else records.upstream(path)
    except NotRecorded:
        raise UserError(f"flow has no record of {one_line(name)}: no job flow ran made it or read it",
                        f"Run `flow run {one_line(name)}` first (or name a file a job made or read): "
                        "`flow lineage` reads what flow recorded when it ran the jobs.") from None


def target_path(name: str) -> str:
    """FILE as the records name it: normalized as a target is, and a path
    inside the working directory made relative to it."""
    path = os.path.normpath(name)
    if os.path.isabs(path):
        inside = os.path.relpath(path)
        if inside != os.pardir and not inside.startswith(os.pardir + os.sep):
            return inside
    return path


# commands the store does not hold ------------------------------------------------------


def commands_from_flowfile(jobs: list[JobEntry], workflow) -> None:
    """Fill in each job's command from the Flowfile as it is now, for a job
    still in its graph (the same rule and wildcards make its first output);
    a job that is not, or whose command cannot be made, keeps none."""
    if not jobs:
        return
    from ..graph.dag import DAG, run_deep
    from ..run.prepare import Preparer

    dag, preparer = DAG(workflow), Preparer(workflow)

    def fill() -> None:
        for entry in jobs:
            if not entry.outputs:
                continue
            try:
                job = dag.resolve_file(entry.outputs[0].path, None)
                if job is not None and job.id == entry.id:
                    prepared = preparer.prepared(job)
                    entry.command = describe(prepared) if prepared is not None else None
            except FlowError:
                continue  # its inputs cannot be found now, its command not formatted: none is shown

    run_deep(fill)


def describe(prepared) -> str | None:
    """A job's action as ``flow run -p`` shows it, or what it is when -p shows nothing."""
    if prepared.display:
        return prepared.display
    if prepared.kind == "run" and isinstance(prepared.payload, tuple) and len(prepared.payload) == 3:
        _code, file, line = prepared.payload
        return f"run: block at {os.path.relpath(file) if os.path.isabs(file) else file}:{line}"
    if prepared.kind == "script" and isinstance(prepared.payload, str):
        return f"script: {prepared.payload}"
    return f"{prepared.kind}:"


# text ----------------------------------------------------------------------------------

_OUTPUT_STATUS = {CHANGED: "changed since flow made it", MISSING: "missing"}
_INPUT_STATUS = {CHANGED: "changed since it was read", MISSING: "missing"}


def text_lines(lineage: Lineage) -> Iterator[str]:
    """The lineage as a tree, one line a file or job, indented by depth."""
    return _downstream_lines(lineage) if lineage.downstream else _upstream_lines(lineage)


def _upstream_lines(lineage: Lineage) -> Iterator[str]:
    """``file  hash  ← job, made TIME · command``, its inputs indented below;
    a job already shown is named, not shown again."""
    root = lineage.file
    if lineage.made_by is None:
        yield f"{one_line(root.path)}  {_hash(root.hash)}  source{_status(root.status, _INPUT_STATUS)}"
        return
    shown: set[str] = set()
    stack: list[tuple[int, str, str | None, str, str]] = [
        (0, root.path, lineage.made_by, root.hash or "", root.status)]
    while stack:
        depth, path, maker, recorded, status = stack.pop()
        at = _indent(depth)
        if maker is None:  # a source, as the job that read it recorded it
            yield f"{at}{one_line(path)}  {_hash(recorded)}  source{_status(status, _INPUT_STATUS)}"
            continue
        job = lineage.jobs[maker]
        out = next((o for o in job.outputs if o.path == path), None)
        file = f"{at}{one_line(path)}  {_file(out) if out is not None else _hash(recorded)}"
        if maker in shown:
            yield f"{file}  ← {one_line(job.label)} (shown above)"
            continue
        shown.add(maker)
        yield f"{file}  ← {_job(job)}"
        below = _indent(depth + 1)
        for other in job.outputs:
            if other.path != path:
                yield f"{below}also made {one_line(other.path)}  {_file(other)}"
        if job.inputs is None:
            yield f"{below}(the inputs it read are not recorded)"
        stack.extend(_input_item(depth + 1, i) for i in reversed(job.inputs or ()))


def _input_item(depth: int, inp: InputEntry) -> tuple[int, str, str | None, str, str]:
    return depth, inp.path, inp.made_by, inp.hash, inp.status


def _downstream_lines(lineage: Lineage) -> Iterator[str]:
    """The file, then ``→ job, made TIME · command`` for each job that read
    it, that job's outputs indented below it, and so on."""
    readers: dict[str, list[str]] = {}
    for job in lineage.jobs.values():
        for inp in job.inputs or ():
            readers.setdefault(inp.path, []).append(job.id)
    root = lineage.file
    if lineage.made_by is None:
        yield f"{one_line(root.path)}  {_hash(root.hash)}  source{_status(root.status, _INPUT_STATUS)}"
    elif lineage.maker is not None:
        yield f"{one_line(root.path)}  {_file(root)}  ← {_job(lineage.maker)}"
    shown: set[str] = set()
    stack: list[tuple[int, str, FileEntry | None]] = [(1, r, None) for r in reversed(readers.get(root.path, ()))]
    while stack:
        depth, jid, out = stack.pop()
        at = _indent(depth)
        if out is not None:
            yield f"{at}{one_line(out.path)}  {_file(out)}"
            stack.extend((depth + 1, r, None) for r in reversed(readers.get(out.path, ())))
            continue
        job = lineage.jobs[jid]
        if jid in shown:
            yield f"{at}→ {one_line(job.label)} (shown above)"
            continue
        shown.add(jid)
        yield f"{at}→ {_job(job)}"
        stack.extend((depth + 1, jid, o) for o in reversed(job.outputs))


def _job(job: JobEntry) -> str:
    text = one_line(job.label)
    if job.finished is not None:
        text += f", made {_local(job.finished)}"
    if job.command:
        text += f" · {one_line(_in_a_line(job.command))}"
    return text


def _file(entry: FileEntry) -> str:
    if entry.status == MISSING and entry.temp:
        return f"{_hash(entry.hash)} (temp(), removed after use)"
    return _hash(entry.hash) + _status(entry.status, _OUTPUT_STATUS)


def _hash(recorded: str | None) -> str:
    if recorded is None:
        return "(no hash recorded)"
    if recorded == "ancient":
        return "ancient()"
    if recorded == "missing":
        return "(missing when read)"
    return recorded[:SHORT]


def _status(status: str, words: dict[str, str]) -> str:
    return "" if status == OK else f" ({words.get(status, status)})"


def _indent(depth: int) -> str:
    if depth <= MAX_INDENT:
        return "  " * depth
    return "  " * MAX_INDENT + f"[depth {depth}] "


def _local(when: float) -> str:
    return datetime.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S")


def summary(lineage: Lineage) -> str:
    jobs, sources = len(lineage.jobs), len(lineage.sources)
    name = one_line(lineage.file.path)
    if lineage.downstream:
        return f"flow: {_count(jobs, 'job')} read {name} or what was made from it"
    if lineage.made_by is None:
        return f"flow: {name} is a source file: no job flow ran made it"
    return f"flow: {name} derives from {_count(jobs, 'job')} and {_count(sources, 'source file')}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


# JSON ----------------------------------------------------------------------------------


def to_json(lineage: Lineage) -> dict:
    """The lineage for tools: every job once, with full hashes; a job's
    inputs name the job that made each (``made_by``), which links the tree."""
    root = lineage.file
    return {
        "file": {"path": root.path, "hash": root.hash, "status": root.status, "temp": root.temp,
                 "made_by": lineage.made_by},
        "direction": "downstream" if lineage.downstream else "upstream",
        "jobs": [{
            "id": job.id, "rule": job.rule, "wildcards": job.wildcards, "command": job.command,
            "key": job.key, "finished": job.finished,
            "finished_at": None if job.finished is None else
            datetime.datetime.fromtimestamp(job.finished).astimezone().isoformat(timespec="seconds"),
            "outputs": [{"path": o.path, "hash": o.hash, "status": o.status, "temp": o.temp} for o in job.outputs],
            "inputs": None if job.inputs is None else [
                {"path": i.path, "hash": i.hash, "made_by": i.made_by, "status": i.status} for i in job.inputs],
        } for job in lineage.jobs.values()],
        "sources": [{"path": s.path, "hash": s.hash, "status": s.status} for s in lineage.sources.values()],
    }


def _in_a_line(command: str, width: int = 100) -> str:
    """A command in a tree's line: its whitespace runs as one space (SQL and
    scripts span lines), cut at ``width`` characters (``--json`` has it whole)."""
    flat = " ".join(command.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
