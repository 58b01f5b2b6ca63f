"""Consolidate many parquet files into one: flow's ``duckdb:`` rule against
the same DuckDB ``COPY`` written by hand in Python and against pyarrow
concatenation. Writes the block "consolidate" of docs/benchmarks.md.

    python benchmarks/consolidate.py                     # 1,000 x 1,000 rows and 100 x 100,000 rows
    python benchmarks/consolidate.py --quick --out X.md  # 20 x 1,000 rows, one run: the smoke test

Each contender is a whole process, started from the shell as a user would:
``flow run`` (start-up, reading the Flowfile, hashing every input, the
worker, DuckDB, recording the output) from a fresh ``.flow/``, and
``python -c`` for the two hand-written scripts. They take turns within each
repeat, and every run's output is checked (row count) before it counts.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

FLOWFILE = '''\
PARTS = glob_wildcards("parts/{part}.parquet").part

rule consolidate:
    input: expand("parts/{part}.parquet", part=PARTS)
    output: "out.parquet"
    threads: 2
    duckdb: "SELECT * FROM input"
'''

COPY = '''\
import duckdb
duckdb.connect().execute(
    "COPY (SELECT * FROM read_parquet('parts/*.parquet')) TO 'out.parquet' (FORMAT parquet, COMPRESSION zstd)")
'''

ARROW = '''\
import glob
import pyarrow as pa, pyarrow.parquet as pq
table = pa.concat_tables([pq.read_table(f) for f in sorted(glob.glob("parts/*.parquet"))])
pq.write_table(table, "out.parquet", compression="zstd")
'''


def make_parts(where: Path, files: int, rows: int) -> None:
    """``files`` parquet files of ``rows`` sensor readings each (zstd, as a job would write them)."""
    import duckdb

    parts = where / "parts"
    if parts.is_dir() and len(list(parts.glob("*.parquet"))) == files:
        return
    shutil.rmtree(where, ignore_errors=True)
    parts.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SELECT setseed(0.5)")
    for i in range(files):
        con.execute(f"""
            COPY (SELECT TIMESTAMP '2025-01-01' + INTERVAL (range + {i * rows}) SECOND AS ts,
                         'sensor-' || (range % 50)::VARCHAR AS sensor,
                         round(random() * 100, 3) AS value,
                         (random() * 4)::INTEGER AS status
                  FROM range({rows}))
            TO '{parts}/{i:05d}.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    (where / "Flowfile").write_text(FLOWFILE)


def contenders(flow: str) -> dict[str, list[str]]:
    return {
        "flow (duckdb: rule)": [flow, "run", "-q", "-j", "2"],
        "DuckDB COPY by hand": [sys.executable, "-c", COPY],
        "pyarrow concat": [sys.executable, "-c", ARROW],
    }


def once(argv: list[str], where: Path, rows: int) -> float:
    for leftover in ("out.parquet", ".flow"):
        path = where / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=where, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed in {where}:\n{proc.stderr[-2000:]}")
    import pyarrow.parquet as pq

    made = pq.read_metadata(where / "out.parquet").num_rows
    if made != rows:
        raise SystemExit(f"{' '.join(argv[:2])} wrote {made} rows, not {rows}")
    return seconds


def measure(cases: list[tuple[int, int]], repeat: int, work: Path, flow: str) -> list[str]:
    lines = ["| files x rows | total rows | " + " | ".join(contenders(flow)) + " | flow / COPY |",
             "|---|---|" + "---|" * (len(contenders(flow)) + 1)]
    for files, rows in cases:
        where = work / f"{files}x{rows}"
        print(f"consolidate {files} x {rows:,} rows ...", file=sys.stderr)
        make_parts(where, files, rows)
        times: dict[str, list[float]] = {name: [] for name in contenders(flow)}
        for _ in range(repeat):
            for name, argv in contenders(flow).items():
                times[name].append(once(argv, where, files * rows))
        medians = {name: statistics.median(t) for name, t in times.items()}
        total = files * rows
        cells = [f"{medians[n]:.2f} s ({total / medians[n] / 1e6:.2f} M rows/s)" for n in medians]
        ratio = medians["flow (duckdb: rule)"] / medians["DuckDB COPY by hand"]
        lines.append(f"| {files:,} x {rows:,} | {total:,} | " + " | ".join(cells) + f" | {ratio:.2f}x |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="1000x1000,100x100000", help="FILESxROWS, comma-separated")
    p.add_argument("--repeat", type=int, default=5, help="runs per contender (the report gives medians)")
    p.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    p.add_argument("--workdir", default=str(REPO / "benchmarks" / ".work" / "consolidate"))
    p.add_argument("--flow", default=str(Path(sys.executable).parent / "flow"))
    p.add_argument("--quick", action="store_true", help="20 x 1,000 rows, one run: a smoke test")
    a = p.parse_args(argv)
    if a.quick:
        a.cases, a.repeat = "20x1000", 1
    report.compile_flow()
    cases = [tuple(int(x) for x in c.split("x")) for c in a.cases.split(",")]
    table = measure(cases, a.repeat, Path(a.workdir), a.flow)
    body = "\n".join([
        "## Consolidating parquet files (issue 5)",
        "",
        report.provenance("consolidate.py", argv),
        "",
        "Many parquet files (ts, sensor, value, status; zstd) into one zstd parquet file, each contender a whole "
        "process: `flow run` of a one-rule Flowfile (`duckdb: \"SELECT * FROM input\"`, `threads: 2`, from a fresh "
        "`.flow/`, so its time includes start-up and hashing every input), the same `COPY` in a `python -c` "
        "script, and `pyarrow.concat_tables` of `pq.read_table` of each file, then `pq.write_table`. "
        f"Medians of {a.repeat}, the contenders taking turns; the last column is flow's time over the COPY's. "
        "The COPY is what one would write by hand: a glob, DuckDB's default threads (all cores) and no "
        "`union_by_name`; flow's rule also unites columns by name, syncs the output to disk before renaming it, "
        "and records it with its hash.",
        "",
        *table,
    ])
    report.publish(Path(a.out), "consolidate", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
