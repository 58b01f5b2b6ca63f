"""``duckdb:`` actions: SQL over the job's input files, written to its one output.

The view ``input`` reads every input in a data format together (parquet, CSV,
TSV, JSON/NDJSON by extension, ``.gz``/``.zst`` for the text ones; columns
united by name; a ``directory()`` means the data files in it, with DuckDB's
``key=value`` folder columns); each named input is also a view of its own
name. Inputs in other formats (a ``.sql`` file, a config) are dependencies
only. Wildcards and params are DuckDB variables (``getvariable('year')``),
never pasted into SQL text. The SQL may hold several statements; the last is
the query whose result becomes the output. That result goes to a temporary
file beside the output, which is synced and renamed, so a crash never leaves
a half-written file under the output's name.

DuckDB is imported only inside the worker that runs the job.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from typing import NamedTuple

from .base import ActionBase, ActionError, JobContext, JobFailed, Prepared, sync_file, temp_beside

_FORMATS = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv",
    ".json": "json", ".ndjson": "json", ".jsonl": "json",
}
_COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
_READERS = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json"}
_SQL_ERRORS = ("ParserException", "BinderException", "CatalogException", "SyntaxException")
_READ_ERRORS = ("IOException", "InvalidInputException", "ConversionException")


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


# Snakemake's habit of formatting values into the command; in SQL that would
# paste text into code, so flow passes values as variables instead.
_PLACEHOLDER = re.compile(r"\{(wildcards|params|input|output|config|threads|resources|log)\b[^{}]*\}")
_GETVARIABLE = re.compile(r"getvariable\s*\(\s*'((?:[^']|'')*)'\s*\)", re.IGNORECASE)
_GLOB = re.compile(r"[*?\[]")
# The ';' that ends the last statement, before any trailing comments: a view cannot hold it.
_FINAL_SEMICOLON = re.compile(r";(?=(\s|--[^\n]*|/\*.*?\*/)*$)", re.DOTALL)


class DuckDBAction(ActionBase):
    """SQL run by DuckDB in a worker; its output is checked when the Flowfile loads."""

    kind = "duckdb"
    what = "SQL"

    def __init__(self, sql: str):
        if not sql.strip():
            raise ActionError("duckdb: needs a SQL query")
        placeholder = _PLACEHOLDER.search(sql)
        if placeholder:
            name = placeholder.group(0)
            raise ActionError(
                f"duckdb: SQL is not formatted, so {name} would stay as it is. Read wildcards and params "
                "with getvariable('name'), and inputs through the views `input` and each named input's name")
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
        if any(name.lower() == "input" for name in ctx.input.keys()):
            raise ActionError("an input of a duckdb: rule cannot be named `input`: that is the view of all inputs")
        _check_variables(self.sql, ctx)
        return self.prepared("duckdb " + self.sql, self.sql, self.sql)

    @staticmethod
    def execute(payload: str, ctx: JobContext) -> None:
        run_sql(payload, ctx)

    @staticmethod
    def warm() -> None:
        """Import DuckDB in a worker before its first job."""
        import duckdb  # noqa: F401


def _check_variables(sql: str, ctx: JobContext) -> None:
    """DuckDB answers NULL for a variable never set, and its names ignore case:
    a misspelt name, or a param that hides a wildcard, would pass unnoticed."""
    wildcards = {name.lower() for name in ctx.wildcards.keys()}
    for name in ctx.params.keys():
        if name.lower() in wildcards:
            raise ActionError(f"params.{name} has the name of the wildcard {{{name}}}: as DuckDB variables "
                              "(names ignore case) one would hide the other; rename the param")
    known = wildcards | {name.lower() for name in ctx.params.keys()}
    for m in _GETVARIABLE.finditer(sql):
        name = m.group(1).replace("''", "'")
        if name.lower() not in known:
            have = ", ".join(list(ctx.wildcards.keys()) + list(ctx.params.keys())) or "none"
            raise ActionError(f"the SQL reads getvariable('{name}'), but there is no wildcard or param "
                              f"of that name (there are: {have})")


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


# inputs -------------------------------------------------------------------------------------


class _Source(NamedTuple):
    path: str  # as the Flowfile names it
    read: str  # what DuckDB opens: the path, or a link to it when its name holds glob characters
    hive: bool  # inside a directory() input: key=value folders become columns, as DuckDB does


class _Inputs:
    """The job's data files, as the views will read them."""

    def __init__(self, ctx: JobContext, scratch: str):
        self.scratch = scratch
        self.links = 0
        self.views: dict[str, list[_Source]] = {"input": [s for p in ctx.input for s in self._sources(p)]}
        self.not_data: dict[str, str] = {}  # named inputs with no data file: name -> path
        for name, value in ctx.input.items():
            paths = value if isinstance(value, list) else [value]
            sources = [s for p in paths for s in self._sources(p)]
            if sources:
                self.views[name] = sources
            else:
                self.not_data[name] = " ".join(paths)

    def _sources(self, path: str) -> list[_Source]:
        if not os.path.isdir(path):
            if not data_format(path)[0] or _empty(path):
                return []
            return [self._source(path, hive=False)]
        found = []
        for dirpath, dirnames, filenames in os.walk(path):
            # hidden and _-prefixed names (_SUCCESS, a writer's temporary file) are not data
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
            found += [os.path.join(dirpath, f) for f in filenames
                      if not f.startswith((".", "_")) and data_format(f)[0]]
        sources = [self._source(f, hive=True) for f in sorted(found) if not _empty(f)]
        if not sources:
            raise JobFailed(f"input directory {path} holds no data files (parquet, CSV, TSV or JSON)")
        return sources

    def _source(self, path: str, hive: bool) -> _Source:
        if not _GLOB.search(path):
            return _Source(path, path, hive)
        # DuckDB expands glob characters in file names and has no escape for
        # them: such a file is read through a plain-named link to it.
        fmt, compression, ext = data_format(path)
        link = os.path.join(self.scratch, "links", f"{self.links}{ext}{_SUFFIXES.get(compression, '')}")
        self.links += 1
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.abspath(path), link)
        return _Source(path, link, hive)

    def files(self) -> list[_Source]:
        return sorted({s for sources in self.views.values() for s in sources})


_SUFFIXES = {"gzip": ".gz", "zstd": ".zst"}


def _empty(path: str) -> bool:
    """A zero-byte CSV or JSON file has no columns: DuckDB would invent one."""
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False  # DuckDB will say what is wrong with it


def _reader(sources: list[_Source]) -> str:
    """One call of a DuckDB reader over files of one format."""
    fmt, _, ext = data_format(sources[0].path)
    listing = "[" + ", ".join(_quote(s.read) for s in sources) + "]"
    extra = ", delim = '\t'" if ext == ".tsv" else ""
    hive = "" if sources[0].hive else ", hive_partitioning = false"
    return f"{_READERS[fmt]}({listing}, union_by_name = true{hive}{extra})"


def _relation(sources: list[_Source]) -> str:
    """A query reading all ``sources``, of any data formats, united by column name."""
    groups: dict[tuple, list[_Source]] = {}
    for s in sources:
        fmt, _, ext = data_format(s.path)
        groups.setdefault((fmt, ext == ".tsv", s.hive), []).append(s)
    return " UNION ALL BY NAME ".join(f"SELECT * FROM {_reader(g)}" for g in groups.values())


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# running ------------------------------------------------------------------------------------


def run_sql(sql: str, ctx: JobContext) -> None:
    """Run one job's SQL in this process (the worker) and write its output."""
    import duckdb

    out = ctx.output[0]
    tmp = temp_beside(out)
    # The job's scratch directory: DuckDB spills there (its default would be
    # .tmp/ in the project) and links for odd file names live there.
    # flow run empties .flow/tmp/ when it starts (what a killed job left) and ends.
    scratch = os.path.join(".flow", "tmp", f"duckdb-{os.getpid()}")
    try:
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch)
        inputs = _Inputs(ctx, scratch)
        with duckdb.connect(config=_config(ctx, scratch)) as con:
            con.execute("SET enable_progress_bar = false")
            _set_variables(con, ctx)
            try:
                *before, query = _statements(con, sql)
                for name, sources in inputs.views.items():
                    if sources:
                        con.execute(f"CREATE VIEW {_ident(name)} AS {_relation(sources)}")
                for statement in before:
                    con.execute(statement)
                # The query becomes a view as written, so that DuckDB's pointers into
                # it are right, and its result is copied to the output.
                con.sql(query).create_view("__flow_result")
                con.execute(f"COPY (FROM __flow_result) TO {_quote(tmp)} ({_copy_options(out)})")
            except duckdb.Error as e:
                raise JobFailed(_explain(con, e, sql, inputs)) from None
        sync_file(tmp)
        os.replace(tmp, out)
    except duckdb.Error as e:
        raise JobFailed(f"DuckDB: {str(e).strip()}") from None
    except OSError as e:
        raise JobFailed(f"{e.filename or out}: {e.strerror}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _statements(con, sql: str) -> list[str]:
    """The SQL's statements; the last must be a query, whose result is the output."""
    import duckdb

    statements = con.extract_statements(sql)
    if not statements:
        raise JobFailed("the duckdb: SQL holds no statement")
    last = statements[-1]
    if last.type != duckdb.StatementType.SELECT:
        raise JobFailed(f"the last statement of a duckdb: rule must be a query (SELECT, FROM, WITH, ...), "
                        f"whose result becomes the output; it is {last.type.name}: {_short(last.query)}")
    return [s.query for s in statements[:-1]] + [_FINAL_SEMICOLON.sub("", last.query)]


def _config(ctx: JobContext, scratch: str) -> dict:
    """DuckDB's settings from the rule: ``threads:``, and ``mem_mb`` as its memory limit."""
    config = {"threads": max(1, int(ctx.threads)), "temp_directory": scratch}
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


def _explain(con, error: Exception, sql: str, inputs: _Inputs) -> str:
    """What went wrong, for a person: the SQL's mistake, or the input that cannot be read."""
    message = _unlinked(str(error).strip(), inputs)
    kind = type(error).__name__
    if kind in _SQL_ERRORS:
        hint = ""
        if not inputs.views["input"] and "input" in message:
            hint = "\nThis job has no input in a data format (parquet, CSV, TSV, JSON), so there is no view `input`."
        for name, path in inputs.not_data.items():
            if name in message:
                hint += f"\nThe input {name} ({path}) is not in a data format, so there is no view `{name}`."
        return f"DuckDB could not run the SQL: {message}\nSQL: {_short(sql)}{hint}"
    if kind in _READ_ERRORS:
        # A conversion error may be the SQL's own cast: only DuckDB naming a file blames it.
        culprit = _unreadable(con, inputs.files(), message, probe=kind != "ConversionException")
        if culprit is not None:
            path, why = culprit
            return f"{'a value of' if kind == 'ConversionException' else 'cannot read'} input {path}: {why}"
    return f"DuckDB: {message}\nSQL: {_short(sql)}"


def _unlinked(message: str, inputs: _Inputs) -> str:
    """DuckDB's message with the files' own names where it names a link."""
    for s in inputs.files():
        if s.read != s.path:
            message = message.replace(s.read, s.path)
    return message


def _unreadable(con, files: list[_Source], message: str, probe: bool) -> tuple[str, str] | None:
    """The input file behind a failure: the one DuckDB's message names, or
    (``probe``) the first that fails when read on its own."""
    lines = message.splitlines()
    named = [ln.strip() for ln in lines if ln.strip().startswith("file = ")]  # a CSV reader's report
    for s in files:
        if f"'{s.path}'" in lines[0] or f'"{s.path}"' in lines[0] or f"file = {s.path}" in named:
            why = "\n".join(ln for ln in lines[:3] if ln.strip()) if named else lines[0]
            return s.path, why
    if not probe:
        return None
    for s in files:
        try:
            con.execute(f"SELECT count(*) FROM {_reader([s])}").fetchall()
        except Exception as e:  # any DuckDB error reading this one file
            return s.path, str(e).strip().splitlines()[0].replace(s.read, s.path)
    return None


def _short(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 300 else text[:297] + "..."
