"""``flow history`` and ``flow stats``: the run history (``run.records``)
shown to people as tables, or to tools as JSON. Nothing here reads the
store itself or decides anything."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

from ..run.records import AttemptRow, Records, RuleStats, RunRow
from ..run.stream import text_safe
from ..run.timeline import seconds_text, size_text, when_text
from .report import one_line

Echo = Callable[[str], None]


def show_runs(records: Records, limit: int, as_json: bool, echo: Echo) -> None:
    """The last runs, the newest first."""
    runs = records.runs(limit)
    if as_json:
        echo(json.dumps(text_safe([_run_dict(r) for r in runs]), indent=2))
        return
    if not runs:
        echo("No run is recorded yet: `flow run` records one.")
        return
    rows = [(f"{r.number}", when_text(r.started), r.outcome, f"{r.ran}", f"{r.failed}", f"{r.up_to_date}",
             _seconds(r.seconds), one_line(" ".join(r.targets) or "(default)")) for r in runs]
    for line in table(("RUN", "STARTED", "OUTCOME", "RAN", "FAILED", "UP TO DATE", "TOOK", "TARGETS"), rows,
                      right=(0, 3, 4, 5, 6)):
        echo(line)


def show_run(records: Records, ref: str, as_json: bool, echo: Echo, directory: str = ".flow") -> None:
    """One run: what it was, and each of its jobs' attempts."""
    run = records.run(ref)
    attempts = records.attempts(run.id)
    log = os.path.join(directory, run.log) if run.log else None
    if as_json:
        echo(json.dumps(text_safe({**_run_dict(run), "log": log, "jobs": [_attempt_dict(a) for a in attempts]}), indent=2))
        return
    echo(f"run {run.number} ({run.id[:8]}): {run.outcome}, started {when_text(run.started)}, "
         f"took {_seconds(run.seconds)}")
    echo(f"  command: {one_line(' '.join(run.command))}")
    echo(f"  jobs: {run.ran} ran, {run.failed} failed, {run.up_to_date} up to date (of {run.total})")
    if log is not None:
        echo(f"  log: {one_line(log)}" + ("" if os.path.exists(log) else " (removed)"))
    if not attempts:
        echo("  no job ran.")
        return
    echo("")
    rows = [(one_line(a.label), "ok" if a.status == 0 else f"failed ({a.status})", f"{a.attempt}",
             _seconds(a.seconds), _seconds(a.cpu), _size(a.rss_kb * 1024 if a.rss_kb is not None else None),
             _size(a.bytes_in), _size(a.bytes_out), one_line(a.reason or ""))
            for a in attempts]
    for line in table(("JOB", "STATUS", "TRY", "TOOK", "CPU", "PEAK MEM", "READ", "WROTE", "WHY"), rows,
                      right=(2, 3, 4, 5, 6, 7)):
        echo(line)


def show_stats(records: Records, rule: str | None, since: float | None, as_json: bool, echo: Echo) -> None:
    """Per rule: runs, failures, duration percentiles, CPU, memory, bytes."""
    stats = records.rule_stats(rule, since)
    if as_json:
        echo(json.dumps(text_safe([s.as_dict() for s in stats]), indent=2))
        return
    if not stats:
        scope = f" of rule {one_line(rule)}" if rule else ""
        echo(f"No job{scope} is recorded" + (" in that time" if since is not None else "") + ".")
        return
    rows = [_stats_row(s) for s in stats]
    header = ("RULE", "RUNS", "FAILED", "P50", "P95", "P99", "MAX", "MEAN CPU", "PEAK MEM", "READ", "WROTE")
    for line in table(header, rows, right=tuple(range(1, 11))):
        echo(line)


def _stats_row(s: RuleStats) -> tuple[str, ...]:
    return (one_line(s.rule), f"{s.runs}", f"{s.failures}", _seconds(s.p50), _seconds(s.p95), _seconds(s.p99),
            _seconds(s.max), _seconds(s.mean_cpu), _size(s.peak_rss_kb * 1024 if s.peak_rss_kb is not None else None),
            _size(s.bytes_in), _size(s.bytes_out))


def table(header: Sequence[str], rows: list[Sequence[str]], right: tuple[int, ...] = ()) -> list[str]:
    """Columns padded to their widest cell (numbers aligned right)."""
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
              for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _size(n: int | None) -> str:
    return "-" if n is None else size_text(n)


def _seconds(s: float | None) -> str:
    return "-" if s is None else seconds_text(max(0.0, s))


def _run_dict(r: RunRow) -> dict:
    return {"run": r.number, "id": r.id, "started": r.started, "ended": r.ended, "seconds": r.seconds,
            "outcome": r.outcome, "command": r.command, "targets": r.targets, "cores": r.cores,
            "total": r.total, "ran": r.ran, "failed": r.failed, "up_to_date": r.up_to_date, "log": r.log}


def _attempt_dict(a: AttemptRow) -> dict:
    return {"job": a.job, "label": a.label, "rule": a.rule, "wildcards": a.wildcards, "status": a.status,
            "attempt": a.attempt, "started": a.started, "ended": a.ended, "seconds": a.seconds,
            "cpu_seconds": a.cpu, "max_rss_kb": a.rss_kb, "bytes_in": a.bytes_in, "bytes_out": a.bytes_out,
            "reason": a.reason}
