"""The benchmark runner, in its smoke version (flow only, 1,000 jobs, one run),
so that the code behind docs/benchmarks.md cannot rot. It asserts what the
runner measured, never how fast: speed is for benchmarks/, not for tests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def quick(runner: str, out: Path, tmp_path: Path) -> None:
    """Run ``benchmarks/RUNNER --quick``, writing its report to ``out``; it must succeed."""
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / runner), "--quick", "--out", str(out),
                        "--workdir", str(tmp_path / "work")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def _row(report: str, name: str) -> str:
    m = re.search(rf"^\| {re.escape(name)} \| ([^|]+) \|$", report, re.MULTILINE)
    assert m, f"no row {name!r} in:\n{report}"
    return m.group(1).strip()


def test_the_quick_benchmark_measures_every_row_for_flow(tmp_path):
    out = tmp_path / "benchmarks.md"
    quick("run.py", out, tmp_path)
    report = out.read_text()
    assert "## layered, 1,000 jobs" in report
    assert float(_row(report, "full build, jobs/s")) > 0
    assert float(_row(report, "no-op, s")) > 0
    # src/0_0.txt feeds one job of layer 1, the three of its group in layers 2 and 3, and the gather
    assert _row(report, "changed leaf, jobs rerun") == "8"
    assert _row(report, "touched leaf, jobs rerun") == "0"  # content hashes: a touch changes nothing
    assert "`flow --version`" in report and "worker pool" in report


def test_the_report_keeps_the_notes_written_by_hand_and_the_other_runners_sections(tmp_path):
    out = tmp_path / "benchmarks.md"
    out.write_text("old\n<!-- notes -->\nwhat the numbers mean\n<!-- /notes -->\nold table\n"
                   "<!-- consolidate -->\nparquet numbers\n<!-- /consolidate -->\n")
    quick("run.py", out, tmp_path)
    report = out.read_text()
    assert "what the numbers mean" in report and "old table" not in report
    assert "<!-- consolidate -->\nparquet numbers\n<!-- /consolidate -->" in report


def test_the_quick_consolidation_benchmark_runs_every_contender_and_keeps_the_rest(tmp_path):
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nthe job-graph tables\n")
    quick("consolidate.py", out, tmp_path)
    report = out.read_text()
    assert report.startswith("# Benchmarks\n\nthe job-graph tables\n")
    row = re.search(r"^\| 20 x 1,000 \| 20,000 \| (.*) \|$", report, re.MULTILINE)
    assert row, report
    cells = [c.strip() for c in row.group(1).split("|")]
    assert len(cells) == 4 and all("M rows/s" in c for c in cells[:3]) and cells[3].endswith("x")


def test_the_quick_ring_attention_benchmark_compares_mlx_with_numpy(tmp_path):
    out = tmp_path / "benchmarks.md"
    quick("ring_attention.py", out, tmp_path)
    report = out.read_text()
    for which in ("mlx", "numpy"):
        row = re.search(rf"^\| {which} \| ([0-9.]+) \| ([0-9.]+) M \| (-?[0-9]+) MB \| (-?[0-9.]+)x \|$",
                        report, re.MULTILINE)
        assert row, report
        assert float(row.group(1)) > 0
    assert re.search(r"MLX / numpy speed: [0-9.]+x", report)


def test_the_quick_watch_latency_benchmark_times_every_save(tmp_path):
    out = tmp_path / "benchmarks.md"
    quick("watch_latency.py", out, tmp_path)
    row = re.search(r"^\| 3 \| ([0-9.]+) s \| ([0-9.]+) s \| ([0-9.]+) s \| < 0.5 s \|$", out.read_text(), re.MULTILINE)
    assert row, out.read_text()
    assert 0 < float(row.group(2)) <= float(row.group(1)) <= float(row.group(3))


def test_the_quick_million_benchmark_measures_a_dry_run_and_no_ops_beside_make(tmp_path):
    out = tmp_path / "benchmarks.md"
    quick("million.py", out, tmp_path)
    report = out.read_text()
    assert "## layered, 300 jobs: dry run and no-op" in report
    for row in ("flow: dry run from clean (`flow run -n -q`)",
                "flow: first no-op (decides every job with the graph and keys that run kept; leaves the stamp)",
                "flow: no-op (the stamp proves it: a `stat` per file)",
                "flow: no-op with `--no-graph-cache`", "make: no-op (`make -s -j 2`)"):
        assert re.fullmatch(r"[\d.]+ s, [\d,]+ MB", _row(report, row)), row
