"""``duckdb:`` actions: SQL over the job's input files, written to its one output.

The view ``input`` reads all inputs together (by extension: parquet, CSV,
JSON/NDJSON; columns united by name); each named input is also a view of its
own name. Wildcards and params are DuckDB variables (``getvariable('year')``),
never pasted into SQL text. The output is written to a temporary file beside
it and renamed, so a crash never leaves a half-written file under its name.
DuckDB is imported only inside the worker that runs the job.
"""

from __future__ import annotations

import os

from .base import ActionError, JobContext, JobFailed, Prepared

_READERS = {
    ".parquet": "read_parquet", ".pq": "read_parquet",
    ".csv": "read_csv_auto", ".tsv": "read_csv_auto", ".txt": "read_csv_auto",
    ".json": "read_json_auto", ".ndjson": "read_json_auto", ".jsonl": "read_json_auto",
}
_FORMATS = {".parquet": "(FORMAT parquet, COMPRESSION zstd)", ".csv": "(FORMAT csv, HEADER true)",
            ".json": "(FORMAT json)", ".ndjson": "(FORMAT json)", ".jsonl": "(FORMAT json)"}


class DuckDBAction:
    kind = "duckdb"

    def __init__(self, sql: str):
        if not sql.strip():
            raise ActionError("duckdb: needs a SQL query")
        self.sql = sql

    def prepare(self, ctx: JobContext) -> Prepared:
        if len(ctx.output) != 1:
            raise ActionError(f"a duckdb: rule writes exactly one output, this one has {len(ctx.output)}")
        ext = os.path.splitext(ctx.output[0])[1].lower()
        if ext not in _FORMATS:
            raise ActionError(f"output {ctx.output[0]}: duckdb: writes {', '.join(sorted(_FORMATS))} files")
        return Prepared("duckdb", "duckdb " + self.sql, self.sql, self.sql)


def _reader(paths: list[str]) -> str:
    exts = {_data_ext(p) for p in paths}
    if len(exts) != 1:
        raise JobFailed(f"inputs of one view must share a format, found {', '.join(sorted(exts))}")
    ext = exts.pop()
    if ext not in _READERS:
        raise JobFailed(f"cannot read {paths[0]}: duckdb: reads {', '.join(sorted(_READERS))} files")
    listing = "[" + ", ".join(_quote(p) for p in paths) + "]"
    extra = ", union_by_name=true" if _READERS[ext] in ("read_parquet", "read_csv_auto") else ""
    return f"{_READERS[ext]}({listing}{extra})"


def _data_ext(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _files(path: str) -> list[str]:
    if os.path.isdir(path):
        found = []
        for dirpath, _, filenames in os.walk(path):
            found += [os.path.join(dirpath, f) for f in sorted(filenames) if _data_ext(f) in _READERS]
        return sorted(found)
    return [path]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def execute(sql: str, ctx: JobContext) -> None:
    import duckdb

    out = ctx.output[0]
    tmp = os.path.join(os.path.dirname(out) or ".", f".{os.path.basename(out)}.flow-tmp")
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {int(ctx.threads)}")
        mem = ctx.resources.get("mem_mb")
        if mem:
            con.execute(f"SET memory_limit = '{int(mem)}MB'")
            spill = os.path.join(".flow", "duckdb-tmp")
            os.makedirs(spill, exist_ok=True)
            con.execute(f"SET temp_directory = {_quote(spill)}")
        for name, value in list(ctx.wildcards.items()) + list(ctx.params.items()):
            con.execute(f"SET VARIABLE {_ident(name)} = ?", [value])
        all_files = [f for p in ctx.input for f in _files(p)]
        if all_files:
            con.execute(f"CREATE VIEW input AS SELECT * FROM {_reader(all_files)}")
        for name, value in ctx.input.items():
            paths = value if isinstance(value, list) else [value]
            files = [f for p in paths for f in _files(p)]
            if files:
                con.execute(f"CREATE VIEW {_ident(name)} AS SELECT * FROM {_reader(files)}")
        ext = _data_ext(out)
        con.execute(f"COPY ({sql}) TO {_quote(tmp)} {_FORMATS[ext]}")
        os.replace(tmp, out)
    except duckdb.Error as e:
        raise JobFailed(f"DuckDB: {e}") from None
    finally:
        con.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
