"""``duckdb:`` actions: SQL over the job's input files, written to its one output.

The view ``input`` reads every input in a data format together (parquet, CSV,
TSV, JSON/NDJSON by extension, ``.gz``/``.zst`` for the text ones; columns
united by name; a directory means the data files in it); each named input is
also a view of its own name. Inputs in other formats (a ``.sql`` file, a
config) are dependencies only. Wildcards and params are DuckDB variables
(``getvariable('year')``), never pasted into SQL text. The result goes to a
temporary file beside the output, which is synced and renamed, so a crash
never leaves a half-written file under the output's name.

DuckDB is imported only inside the worker that runs the job.
"""

from __future__ import annotations

import os
import shutil

from .base import ActionError, JobContext, JobFailed, Prepared

_FORMATS = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv",
    ".json": "json", ".ndjson": "json", ".jsonl": "json",
}
_COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
_READERS = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json"}
_SQL_ERRORS = ("ParserException", "BinderException", "CatalogException", "SyntaxException")


def data_format(path: str) -> tuple[str | None, str | None, str]:
    """(format, compression, extension) of a data file by its name; format is
    None for a file that is not one (parquet is never compressed outside)."""
    base, ext = os.path.splitext(path.lower())
    compression = _COMPRESSIONS.get(ext)
    if compression:
        base, ext = os.path.splitext(base)
    fmt = _FORMATS.get(ext)
    if fmt == "parquet" and compression:
        fmt = None
    return fmt, compression, ext


class DuckDBAction:
    kind = "duckdb"

    def __init__(self, sql: str):
        if not sql.strip():
            raise ActionError("duckdb: needs a SQL query")
        self.sql = sql

    def check_outputs(self, outputs: list[tuple[str, frozenset[str]]]) -> None:
        """Refuse, when the Flowfile is loaded, outputs this action cannot write."""
        if len(outputs) != 1:
            raise ActionError(f"a duckdb: rule writes exactly one output, this one has {len(outputs)}")
        path, flags = outputs[0]
        if "directory" in flags:
            raise ActionError(f"a duckdb: rule writes one file, not a directory() ({path})")
        if not path.endswith("}"):  # (an extension given by a wildcard is known per job)
            _output_format(path)

    def prepare(self, ctx: JobContext) -> Prepared:
        if len(ctx.output) != 1:
            raise ActionError(f"a duckdb: rule writes exactly one output, this one has {len(ctx.output)}")
        _output_format(ctx.output[0])
        if "input" in ctx.input.keys():
            raise ActionError("an input of a duckdb: rule cannot be named `input`: that is the view of all inputs")
        return Prepared("duckdb", "duckdb " + self.sql, self.sql, self.sql)


def _output_format(path: str) -> str:
    fmt, _, _ = data_format(path)
    if fmt is None:
        raise ActionError(f"output {path}: duckdb: writes .parquet, .csv, .tsv, .json, .ndjson or .jsonl "
                          "files (.gz or .zst for the text ones)")
    return fmt


def _copy_options(path: str) -> str:
    fmt, compression, ext = data_format(path)
    if fmt == "parquet":
        return "FORMAT parquet, COMPRESSION zstd"
    options = ["FORMAT csv, HEADER true"] if fmt == "csv" else ["FORMAT json"]
    if ext == ".tsv":
        options.append("DELIMITER '\t'")
    if ext == ".json":
        options.append("ARRAY true")  # a .json file is one document; .ndjson/.jsonl have one per line
    options.append(f"COMPRESSION {compression or 'none'}")
    return ", ".join(options)


def _data_files(path: str) -> list[str]:
    """The data files an input stands for: itself, or for a directory the
    data files under it (hidden and ``_``-prefixed ones, such as ``_SUCCESS``
    or a writer's temporary file, are not data)."""
    if not os.path.isdir(path):
        return [path] if data_format(path)[0] else []
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))]
        found += [os.path.join(dirpath, f) for f in filenames
                  if not f.startswith((".", "_")) and data_format(f)[0]]
    if not found:
        raise JobFailed(f"input directory {path} holds no data files (parquet, CSV, TSV or JSON)")
    return sorted(found)


def _reader(files: list[str]) -> str:
    """One call of a DuckDB reader over files of one format."""
    fmt, _, ext = data_format(files[0])
    listing = "[" + ", ".join(_quote(f) for f in files) + "]"
    extra = ", delim = '\t'" if ext == ".tsv" else ""
    return f"{_READERS[fmt]}({listing}, union_by_name = true{extra})"


def _relation(files: list[str]) -> str:
    """A query reading all ``files``, of any data formats, united by column name."""
    groups: dict[tuple, list[str]] = {}
    for f in files:
        fmt, _, ext = data_format(f)
        groups.setdefault((fmt, ext == ".tsv"), []).append(f)
    return " UNION ALL BY NAME ".join(f"SELECT * FROM {_reader(g)}" for g in groups.values())


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def execute(sql: str, ctx: JobContext) -> None:
    import duckdb

    out = ctx.output[0]
    tmp = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.flow-tmp")
    views: dict[str, list[str]] = {"input": [f for path in ctx.input for f in _data_files(path)]}
    for name, value in ctx.input.items():
        files = [f for p in (value if isinstance(value, list) else [value]) for f in _data_files(p)]
        if files:
            views[name] = files
    spill = os.path.join(".flow", "tmp", f"duckdb-{os.getpid()}")  # DuckDB's default is .tmp/ here
    os.makedirs(spill, exist_ok=True)
    try:
        with duckdb.connect(config=_config(ctx, spill)) as con:
            con.execute("SET enable_progress_bar = false")
            _set_variables(con, ctx)
            try:
                for name, files in views.items():
                    if files:
                        con.execute(f"CREATE VIEW {_ident(name)} AS {_relation(files)}")
                con.execute(f"COPY ({sql}) TO {_quote(tmp)} ({_copy_options(out)})")
            except duckdb.Error as e:
                raise JobFailed(_explain(con, e, sql, views)) from None
        _sync(tmp)
        os.replace(tmp, out)
    except duckdb.Error as e:
        raise JobFailed(f"DuckDB: {str(e).strip()}") from None
    finally:
        shutil.rmtree(spill, ignore_errors=True)
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _config(ctx: JobContext, spill: str) -> dict:
    """DuckDB's settings from the rule: ``threads:``, and ``mem_mb`` as its memory limit."""
    config = {"threads": max(1, int(ctx.threads)), "temp_directory": spill}
    mem = ctx.resources.get("mem_mb")
    if mem:
        config["memory_limit"] = f"{int(mem)}MB"
    return config


def _set_variables(con, ctx: JobContext) -> None:
    import duckdb

    for name, value in list(ctx.wildcards.items()) + list(ctx.params.items()):
        try:
            con.execute(f"SET VARIABLE {_ident(name)} = ?", [value])
        except duckdb.Error as e:
            raise JobFailed(f"{name} = {value!r} cannot be a DuckDB variable: {str(e).strip()}") from None


def _sync(path: str) -> None:
    """Make the file's bytes durable before its name says it is done."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _explain(con, error: Exception, sql: str, views: dict[str, list[str]]) -> str:
    """What went wrong, for a person: the SQL's mistake, or the input that cannot be read."""
    message = str(error).strip()
    if type(error).__name__ in _SQL_ERRORS:
        hint = ""
        missing = [n for n, files in views.items() if not files and n == "input"]
        if missing and "input" in message:
            hint = "\nThis job has no input in a data format (parquet, CSV, TSV, JSON), so there is no view `input`."
        return f"DuckDB could not run the SQL: {message}\nSQL: {_short(sql)}{hint}"
    files = sorted({f for fs in views.values() for f in fs})
    culprit = _unreadable(con, files, message.splitlines()[0])
    if culprit is not None:
        path, why = culprit
        return f"cannot read input {path}: {why}"
    return f"DuckDB: {message}\nSQL: {_short(sql)}"


def _unreadable(con, files: list[str], first_line: str) -> tuple[str, str] | None:
    """The input file behind a failure, if one cannot be read on its own
    (DuckDB's message names it, or reading it alone fails)."""
    for f in files:
        if f"'{f}'" in first_line or f'"{f}"' in first_line:
            return f, first_line
    for f in files:
        try:
            con.execute(f"SELECT count(*) FROM {_reader([f])}").fetchall()
        except Exception as e:  # any DuckDB error reading this one file
            return f, str(e).strip().splitlines()[0]
    return None


def _short(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 300 else text[:297] + "..."
